"""Depth network (encoder + monodepth2-shaped multi-scale disparity decoder) and the pose network.

The decoder and pose network stay non-spiking, as in the source report (only the encoder was made
spiking). Decoder: five upsampling stages with skip connections, 3×3 reflection-padded convs + ELU,
sigmoid disparity heads at scales 0–3 (full, 1/2, 1/4, 1/8 resolution) — Godard et al., ICCV 2019.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from snnsearch.depth.models.encoders import (
    ENCODERS,
    ResNetEncoder,
    SpikingResNetEncoder,
    imagenet_state_dict,
    load_encoder_checkpoint,
)
from snnsearch.snn.neurons import NeuronSpec

NUM_CH_DEC = (16, 32, 64, 128, 256)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.ELU(inplace=True))


def _conv3x3(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3))


class DepthDecoder(nn.Module):
    """Multi-scale disparity decoder; ``forward`` returns sigmoid maps, scale 0 first."""

    def __init__(self, num_ch_enc: Sequence[int], num_scales: int = 4) -> None:
        super().__init__()
        if not 1 <= num_scales <= 4:
            raise ValueError(f"num_scales must be in 1..4 (got {num_scales})")
        self.num_scales = num_scales
        enc, dec = list(num_ch_enc), NUM_CH_DEC
        self.up0 = nn.ModuleList()
        self.up1 = nn.ModuleList()
        for i in range(4, -1, -1):
            self.up0.append(_conv_block(enc[-1] if i == 4 else dec[i + 1], dec[i]))
            self.up1.append(_conv_block(dec[i] + (enc[i - 1] if i > 0 else 0), dec[i]))
        self.disp = nn.ModuleList(_conv3x3(dec[s], 1) for s in range(num_scales))

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        x = features[-1]
        disps: dict[int, torch.Tensor] = {}
        for step, i in enumerate(range(4, -1, -1)):
            x = F.interpolate(self.up0[step](x), scale_factor=2, mode="nearest")
            if i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.up1[step](x)
            if i < self.num_scales:
                disps[i] = torch.sigmoid(self.disp[i](x))
        return [disps[s] for s in range(self.num_scales)]


class DepthNet(nn.Module):
    """Encoder + decoder: ``image [B, 3, H, W]`` (H, W multiples of 32, >= 64) → disparities."""

    def __init__(self, encoder: nn.Module, num_scales: int = 4) -> None:
        super().__init__()
        self.encoder = encoder
        num_ch_enc = cast(Sequence[int], encoder.num_ch_enc)
        self.decoder = DepthDecoder(num_ch_enc, num_scales)

    @property
    def spiking(self) -> bool:
        return bool(getattr(self.encoder, "spiking", False))

    @property
    def timesteps(self) -> int:
        return int(getattr(self.encoder, "T", 1))

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        h, w = image.shape[-2:]
        # 1/32 features are reflection-padded by the decoder, so they need at least 2 pixels.
        if h % 32 or w % 32 or min(h, w) < 64:
            raise ValueError(
                f"image height and width must be multiples of 32 and >= 64 (got {h}×{w})"
            )
        return self.decoder(self.encoder(image))


class PoseDecoder(nn.Module):
    """monodepth2's pose head: 1×1 squeeze, two 3×3 convs, 1×1 to 6, spatial mean, ×0.01."""

    def __init__(self, in_channels: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 256, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 6, 1),
        )
        # Start from the identity motion. With a random last layer the initial translations gave up
        # to ~20 px of random flow at 64×192, and the depth net escaped it by predicting infinite
        # depth: disparity saturated at 0 within 5 Adam steps (lr 1e-3) and never recovered.
        last = self.net[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The 0.01 keeps initial motions tiny so early warps are near-identity (monodepth2).
        out = 0.01 * self.net(feature).mean(dim=(2, 3))
        return out[:, :3], out[:, 3:]


class PoseNet(nn.Module):
    """Relative pose of a frame pair from a 6-channel ResNet-18 (monodepth2 "separate_resnet").

    ``forward(a, b)`` returns (axis-angle ``[B, 3]``, translation ``[B, 3]``) of the motion a → b.
    """

    def __init__(self, depth: int = 18) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(depth=depth, in_images=2)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc[-1])

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder(self.encoder(torch.cat([a, b], dim=1))[-1])


@dataclass(frozen=True)
class DepthModelSpec:
    """What shapes the depth network (the checkpoint-compatibility keys).

    Args:
        encoder: "ms_resnet" (spiking) or "resnet" (ANN baseline).
        depth: 18 or 34.
        neuron: spiking neuron (ignored by "resnet").
        T: timesteps (spiking only).
        num_scales: decoder output scales (monodepth2: 4).
        channels: MS-ResNet stem width (64 = ImageNet layout).
        grad_checkpoint: activation checkpointing per MS-ResNet stage (not a shape key).
    """

    encoder: str = "ms_resnet"
    depth: int = 18
    neuron: NeuronSpec = field(default_factory=lambda: NeuronSpec(kind="ilif", D=4))
    T: int = 2
    num_scales: int = 4
    channels: int = 64
    grad_checkpoint: bool = False


def build_depth_net(spec: DepthModelSpec, pretrain: str = "none") -> DepthNet:
    """Builds the depth network and applies the pretraining choice.

    Args:
        spec: architecture.
        pretrain: "none"; "imagenet" (torchvision's ResNet weights; for MS-ResNet transferred by
            name, see ``transfer_resnet``); "checkpoint:<path>" (encoder weights from a checkpoint
            dir or .pt file, e.g. a spiking ImageNet MS-ResNet in spikingjelly's key layout).
    """
    encoder = ENCODERS.get(spec.encoder)(
        depth=spec.depth, neuron=spec.neuron, T=spec.T, channels=spec.channels,
        grad_checkpoint=spec.grad_checkpoint,
    )
    if pretrain == "imagenet":
        encoder.load_imagenet(spec.depth)
    elif pretrain.startswith("checkpoint:"):
        load_encoder_checkpoint(encoder, pretrain.removeprefix("checkpoint:"))
    elif pretrain != "none":
        raise ValueError(f"unknown pretrain {pretrain!r}; use none, imagenet or checkpoint:<path>")
    return DepthNet(encoder, spec.num_scales)


def set_initial_depth(
    net: DepthNet, depth_m: float, min_depth: float = 0.1, max_depth: float = 100.0
) -> None:
    """Sets every disparity head's bias so that an untrained net predicts about ``depth_m``.

    Why: monodepth2's heads start at sigmoid ≈ 0.5, i.e. a depth of ≈ 0.2 m under
    ``disp_to_depth(·, 0.1, 100)``. With a predicted pose that scale is free, but with a known
    metric pose (``pose=known``) a 0.2 m scene warps a 1 m step far outside the frame, the
    auto-mask then prefers the unwarped sources almost everywhere and depth gets little signal.
    """
    if not min_depth < depth_m < max_depth:
        raise ValueError(f"init_depth must be in ({min_depth}, {max_depth}) m (got {depth_m})")
    lo, hi = 1.0 / max_depth, 1.0 / min_depth
    p = (1.0 / depth_m - lo) / (hi - lo)
    bias = float(torch.logit(torch.tensor(p)))
    heads = [m for m in net.decoder.disp.modules() if isinstance(m, nn.Conv2d)]
    for conv in heads:
        assert conv.bias is not None
        nn.init.constant_(conv.bias, bias)


def build_pose_net(pretrain: str = "none") -> PoseNet:
    """Pose network; ImageNet-initialised when the depth encoder is (as monodepth2 does)."""
    net = PoseNet(depth=18)
    if pretrain == "imagenet":
        net.encoder.load_imagenet(18)
    return net


__all__ = [
    "DepthDecoder",
    "DepthModelSpec",
    "DepthNet",
    "PoseNet",
    "ResNetEncoder",
    "SpikingResNetEncoder",
    "build_depth_net",
    "build_pose_net",
    "imagenet_state_dict",
    "set_initial_depth",
]
