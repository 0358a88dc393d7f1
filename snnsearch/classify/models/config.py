"""Model hyperparameters: one frozen dataclass shared by every classification family.

Fields a family does not use are ignored by it (an FC net has no ``channels``); the sweep YAML
only varies the ones that matter for the chosen family.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from snnsearch.snn.neurons import NeuronSpec

POOLS = ("max", "avg")  # CSNN pooling choices (``ModelShape.pool``)


@dataclass(frozen=True)
class ModelShape:
    """The shape keys every classification family reads; declared once, shared by
    :class:`ModelCfg` and the trial config (``snnsearch.classify.config.ClassifyConfig``), whose
    flat YAML keys they are.

    Args:
        hidden_layers, hidden_width: FC-SNN depth (0 = the single-layer net) and width.
        conv_blocks, channels: CSNN depth knob (conv–BN–neuron[–pool] blocks) and width.
        embed_dim, heads, blocks, patch_size, mlp_ratio: Spikformer shape.
        pool: CSNN pooling, ``max`` (the tutorial's) or ``avg`` (what NIR and neuromorphic
            chips represent; ``deploy: nir`` spaces need it, see docs/export.md).
    """

    hidden_layers: int = 0
    hidden_width: int = 256
    conv_blocks: int = 2
    channels: int = 128
    embed_dim: int = 64
    heads: int = 4
    blocks: int = 1
    patch_size: int = 4
    mlp_ratio: float = 4.0
    pool: str = "max"

    def shape(self) -> dict:
        """The :class:`ModelShape` fields of this object (of a subclass too) as keyword args."""
        return {f.name: getattr(self, f.name) for f in fields(ModelShape)}


@dataclass(frozen=True)
class ModelCfg(ModelShape):
    """Args:
        T: timesteps (1 for ANN twins).
        neuron: neuron kind and parameters for every spiking layer.
        in_channels, image_size, num_classes: input/output geometry.
        hidden_layers, hidden_width: FC-SNN depth (0 = the single-layer net) and width.
        conv_blocks, channels: CSNN depth knob (conv–BN–neuron[–pool] blocks) and width.
        embed_dim, heads, blocks, patch_size, mlp_ratio: Spikformer shape.
        softmax_attention: ANN transformer twin (softmax) instead of spiking self-attention.
    """

    T: int = 4
    neuron: NeuronSpec = field(default_factory=NeuronSpec)
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    softmax_attention: bool = False

    def __post_init__(self) -> None:
        checks = {
            "T": self.T >= 1, "hidden_layers": self.hidden_layers >= 0,
            "hidden_width": self.hidden_width >= 1, "conv_blocks": self.conv_blocks >= 1,
            "channels": self.channels >= 1, "embed_dim": self.embed_dim >= 1,
            "heads": self.heads >= 1, "blocks": self.blocks >= 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"{key} must be >= {0 if key == 'hidden_layers' else 1} "
                                 f"(got {getattr(self, key)})")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)} (got {self.pool!r})")
        if self.embed_dim % self.heads:
            raise ValueError(
                f"embed_dim {self.embed_dim} must be divisible by heads {self.heads}"
            )

    def ann_twin(self) -> "ModelCfg":
        """Same shape with ReLU, one timestep, softmax attention: the ANN baseline / pretrainer."""
        return replace(self, T=1, neuron=replace(self.neuron, kind="relu"), softmax_attention=True)
