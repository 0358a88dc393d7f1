"""The classification trial's config: one frozen dataclass built from the flat trial dict.

Built with :func:`snnsearch.training.flat_config.config_from_dict`, which rejects unknown keys and
coerces types, so a typo in a search space fails the trial at once with one line naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from snnsearch.classify.models.config import ModelCfg, ModelShape
from snnsearch.energy.models import check_choice as check_energy_choice
from snnsearch.snn.neurons import NeuronSpec
from snnsearch.training.flat_config import config_from_dict


@dataclass(frozen=True)
class ClassifyConfig(ModelShape):
    """One classification trial (MNIST / FashionMNIST). Model-shape keys decide checkpoint compatibility."""

    dataset: str = "mnist"
    data_dir: str | None = None
    val_size: int = 5000
    split_seed: int = 0
    train_subset: int | None = None
    model: str = "csnn"
    T: int = 4
    neuron: str = "lif"
    tau: float = 2.0
    v_threshold: float = 1.0
    D: int = 4
    surrogate_alpha: float = 2.0
    detach_reset: bool = True
    # hidden_layers, hidden_width, conv_blocks, channels, embed_dim, heads, blocks, patch_size,
    # mlp_ratio, pool: from ModelShape
    loss: str = "auto"
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    lr_schedule: str = "cosine"
    batch_size: int = 128
    epochs: int = 10
    seed: int = 0
    pretrain: str = "none"
    pretrain_epochs: int = 1
    device: str = "auto"
    energy_images: int = 64
    energy_model: str = "compute45"
    sram_kb: float = 32.0
    figures: bool = True
    deploy: str = "none"  # "nir": the space is exportable by construction (spaces/deploy.py)

    SHAPE_KEYS = (
        "dataset", "model", "neuron", "hidden_layers", "hidden_width", "conv_blocks", "channels",
        "embed_dim", "heads", "blocks", "patch_size", "mlp_ratio", "pool",
    )

    def __post_init__(self) -> None:
        if self.T < 1:
            raise ValueError(f"T must be >= 1 (got {self.T}); T is the number of timesteps")
        for key in ("batch_size", "epochs"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1 (got {getattr(self, key)})")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr})")
        if self.loss not in ("auto", "mse", "ce"):
            raise ValueError(f"loss must be auto, mse or ce (got {self.loss!r})")
        if self.deploy not in ("none", "nir"):
            raise ValueError(f"deploy must be none or nir (got {self.deploy!r})")
        if self.lr_schedule not in ("cosine", "none"):
            raise ValueError(f"lr_schedule must be cosine or none (got {self.lr_schedule!r})")
        self.neuron_spec()  # validates tau, D, neuron kind, threshold with one-line errors
        check_energy_choice(self.energy_model, self.sram_kb)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ClassifyConfig":
        return config_from_dict(cls, values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def neuron_spec(self) -> NeuronSpec:
        return NeuronSpec(
            kind=self.neuron, tau=self.tau, v_threshold=self.v_threshold, D=self.D,
            surrogate_alpha=self.surrogate_alpha, detach_reset=self.detach_reset,
        )

    def model_cfg(self) -> ModelCfg:
        return ModelCfg(T=self.T, neuron=self.neuron_spec(), **self.shape())

    @property
    def is_ann(self) -> bool:
        return self.model.endswith("_ann")
