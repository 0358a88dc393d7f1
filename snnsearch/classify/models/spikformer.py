"""Spikformer for 28×28 images (Zhou et al. 2023; source report 93.5% on FashionMNIST at T=4) and
its ANN transformer twin (softmax attention, ReLU; report 94.0%).

The SPS patch stem and the MLP are spikingjelly's (``model.spikformer``; patch_size 4 pools
28→14→7, i.e. 49 tokens). The self-attention is written here because spikingjelly's
``SpikingSelfAttention`` computes Q·Kᵀ·V inline, where the energy estimator's hooks cannot see the
spike matmuls, and has no softmax form for the ANN twin; it keeps SSA's shape: conv1d–BN–neuron
projections, Q·Kᵀ·V·s with s = 0.125 and no softmax, an attention neuron at threshold 0.5.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer
from spikingjelly.activation_based.model.spikformer import SpikformerMLP, SpikformerPatchStem

from snnsearch.classify.models.config import ModelCfg
from snnsearch.classify.models.readout import repeat_over_time
from snnsearch.classify.models.registry import register_model
from snnsearch.energy import SpikeMatmul
from snnsearch.snn.neurons import NeuronSpec

SSA_SCALE = 0.125


def _conv_bn_1d(c_in: int, c_out: int) -> nn.Module:
    return layer.SeqToANNContainer(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))


class SelfAttention(nn.Module):
    """Spiking self-attention (SSA) or, with ``softmax=True``, softmax attention. Input ``[T, B, C, L]``."""

    def __init__(self, dim: int, heads: int, spec: NeuronSpec, *, softmax: bool) -> None:
        super().__init__()
        self.heads, self.softmax = heads, softmax
        self.scale = SSA_SCALE if not softmax else (dim // heads) ** -0.5
        self.qkv = _conv_bn_1d(dim, 3 * dim)
        self.qkv_neuron = spec.build()
        self.scores = SpikeMatmul()
        self.mix = SpikeMatmul()
        self.attn_neuron = replace(spec, v_threshold=0.5).build() if spec.is_spiking else nn.Identity()
        self.proj = _conv_bn_1d(dim, dim)
        self.proj_neuron = spec.build()

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        T, B, C, L = x_seq.shape
        qkv = self.qkv_neuron(self.qkv(x_seq)).reshape(T, B, 3, self.heads, C // self.heads, L)
        q, k, v = qkv.transpose(-2, -1).unbind(2)  # each [T, B, heads, L, d]
        scores = self.scores(q, k.transpose(-2, -1)) * self.scale
        if self.softmax:
            scores = scores.softmax(dim=-1)
        out = self.mix(scores, v).transpose(-2, -1).reshape(T, B, C, L)
        return self.proj_neuron(self.proj(self.attn_neuron(out)))


class Block(nn.Module):
    def __init__(self, cfg: ModelCfg) -> None:
        super().__init__()
        spec = cfg.neuron
        self.attn = SelfAttention(cfg.embed_dim, cfg.heads, spec, softmax=cfg.softmax_attention)
        self.mlp = SpikformerMLP(
            cfg.embed_dim, int(cfg.embed_dim * cfg.mlp_ratio), cfg.embed_dim,
            spiking_neuron=lambda **_: spec.build(),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.attn(tokens)
        return tokens + self.mlp(tokens)


class Spikformer(nn.Module):
    def __init__(self, cfg: ModelCfg) -> None:
        super().__init__()
        if cfg.embed_dim % 8:
            raise ValueError(f"embed_dim must be a multiple of 8 for the SPS stem (got {cfg.embed_dim})")
        if cfg.patch_size not in (4,) or cfg.image_size % cfg.patch_size:
            raise ValueError(f"patch_size must be 4 for {cfg.image_size}x{cfg.image_size} inputs "
                             f"(got {cfg.patch_size}); spikingjelly's SPS stem supports 4 or 16")
        self.T = cfg.T
        spec = cfg.neuron
        self.stem = SpikformerPatchStem(
            cfg.image_size, cfg.image_size, cfg.patch_size, cfg.in_channels, cfg.embed_dim,
            spiking_neuron=lambda **_: spec.build(),
        )
        self.blocks = nn.Sequential(*[Block(cfg) for _ in range(cfg.blocks)])
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x_seq = self.stem(repeat_over_time(images, self.T))  # [T, B, C, H', W']
        tokens = self.blocks(x_seq.flatten(3))  # [T, B, C, L]
        return self.head(tokens.mean(-1)).mean(0)


@register_model("spikformer")
def spikformer(cfg: ModelCfg) -> nn.Module:
    return Spikformer(cfg)


@register_model("transformer_ann")
def transformer_ann(cfg: ModelCfg) -> nn.Module:
    return Spikformer(cfg.ann_twin())
