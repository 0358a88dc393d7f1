"""Flat, frozen configuration of the depth trainable (Ray Tune passes a flat ``param_space``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snnsearch.energy.models import check_choice as check_energy_choice
from snnsearch.snn.neurons import NEURON_KINDS, NeuronSpec
from snnsearch.training.flat_config import config_from_dict

# Keys that change the network: a checkpoint with other values cannot be resumed.
MODEL_KEYS = ("encoder", "depth", "channels", "neuron", "D", "num_scales", "pose")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class DepthConfig:
    """Every knob of a depth run. Defaults are monodepth2's (192×640, batch 12, Adam 1e-4 with a
    ×0.1 step at epoch 15, 20 epochs) with the report's best SNN (MS-ResNet-18, I-LIF T=2 D=4).

    Data: ``data`` "synthetic" (generated under ``data_dir``, or a cache dir when empty; "auto"
    splits are the generator's scene-disjoint ones) or "kitti" (``data_dir`` = KITTI raw root;
    ``train_split``/``val_split`` = explicit monodepth2 split files, relative paths under
    ``data_dir``; write drive-disjoint ones with ``python -m snnsearch.depth.splits``; a frame in
    both is an error; ``gt_path`` = ``gt_depths.npz`` of the val split, or "" to project the
    velodyne scans). ``max_*_items`` > 0 truncate the splits (smoke runs).

    ``v_threshold`` defaults to 0.5 (MS-ResNet's own default): at 1.0, with the blocks' BN weight
    initialised to 0.5 and BN running variance starting at 1, every I-LIF layer was silent in eval
    mode for the first epochs of short runs (measured: silent_fraction 0.94 after 6 steps).

    ``pose``: "net" (monodepth2's pose network) or "known" (the drives' ``poses.txt``, written by
    the synthetic scenes; like monodepth2's stereo training with a known baseline, it fixes the
    scale and removes the flat-depth-plus-motion solution). ``init_depth`` > 0 sets the disparity
    heads' bias so the untrained net predicts about that many metres (0: monodepth2's ≈ 0.2 m);
    use it with ``pose=known``, whose metric motion needs a plausible starting depth.

    Speed and memory: ``compile`` wraps the depth net in ``torch.compile`` (``compile_backend``:
    "inductor" generates kernels; "aot_eager" only traces, for quick CPU checks); ``precision`` "bf16"
    runs forward and loss under bf16 autocast; ``grad_checkpoint`` recomputes each MS-ResNet
    stage in the backward pass instead of storing its T-step activations (what lets T=20 train
    at batch 12). ``channels`` is MS-ResNet's stem width (64 = the ImageNet layout; smaller
    widths make the smoke sweep's checkpoints small). ``num_workers`` -1: DataLoader workers
    follow the CPUs Ray assigned to the trial (one kept for the training loop), 0 outside Ray.
    ``energy_images``: validation images the energy estimate averages over (the same ones for
    every trial). ``frame_cache``: where frames decoded at the training resolution are cached
    ("auto": the user cache dir, ``$SNNSEARCH_CACHE`` or ~/.cache/snnsearch; a directory;
    "off": decode PNGs on every access; see ``snnsearch.depth.data.frame_cache``).
    """

    data: str = "synthetic"
    data_dir: str = ""
    train_split: str = "auto"
    val_split: str = "auto"
    gt_path: str = ""
    height: int = 192
    width: int = 640
    encoder: str = "ms_resnet"
    depth: int = 18
    channels: int = 64
    neuron: str = "ilif"
    T: int = 2
    D: int = 4
    tau: float = 2.0
    v_threshold: float = 0.5
    pretrain: str = "none"
    pose: str = "net"
    init_depth: float = 0.0
    batch_size: int = 12
    lr: float = 1e-4
    epochs: int = 20
    scheduler_step: int = 15
    seed: int = 0
    num_scales: int = 4
    smoothness: float = 1e-3
    augment: bool = True
    num_scenes: int = 8
    frames_per_scene: int = 16
    val_scenes: int = 1
    synthetic_height: int = 96
    synthetic_width: int = 320
    max_train_items: int = 0
    max_val_items: int = 0
    num_workers: int = -1
    device: str = "auto"
    energy_model: str = "compute45"
    sram_kb: float = 32.0
    compile: bool = False
    compile_backend: str = "inductor"
    precision: str = "fp32"
    grad_checkpoint: bool = False
    energy_images: int = 64
    frame_cache: str = "auto"

    def __post_init__(self) -> None:
        checks = [
            (
                self.data in ("synthetic", "kitti"),
                f"data must be synthetic or kitti (got {self.data!r})",
            ),
            (
                self.data == "synthetic" or bool(self.data_dir),
                "data=kitti needs data_dir=<KITTI raw root>",
            ),
            (
                self.data != "kitti"
                or (self.train_split not in ("", "auto") and self.val_split not in ("", "auto")),
                (
                    "data=kitti needs explicit train_split and val_split files ('auto' would "
                    "validate on training frames); write drive-disjoint ones with "
                    "python -m snnsearch.depth.splits <kitti_root> --out <kitti_root>/splits"
                ),
            ),
            (
                self.encoder in ("ms_resnet", "resnet"),
                f"encoder must be ms_resnet or resnet (got {self.encoder!r})",
            ),
            (self.pose in ("net", "known"), f"pose must be net or known (got {self.pose!r})"),
            (
                self.init_depth == 0 or 0.1 < self.init_depth < 100,
                (
                    f"init_depth must be 0 (monodepth2's init) or in (0.1, 100) m "
                    f"(got {self.init_depth})"
                ),
            ),
            (self.depth in (18, 34), f"depth must be 18 or 34 (got {self.depth})"),
            (
                self.channels in (8, 16, 32, 64) and (self.channels == 64 or self.encoder != "resnet"),
                f"channels must be 8, 16, 32 or 64, and 64 for encoder=resnet (got {self.channels})",
            ),
            (
                self.precision in PRECISIONS,
                f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})",
            ),
            (self.energy_images >= 1, f"energy_images must be >= 1 (got {self.energy_images})"),
            (self.num_workers >= -1, f"num_workers must be >= -1 (got {self.num_workers})"),
            (
                self.neuron in NEURON_KINDS,
                f"neuron must be one of {', '.join(NEURON_KINDS)} (got {self.neuron!r})",
            ),
            (1 <= self.D <= 8, f"D must be in 1..8 (got {self.D})"),
            (self.T >= 1, f"T must be >= 1 (got {self.T})"),
            (
                self.height % 32 == 0
                and self.width % 32 == 0
                and min(self.height, self.width) >= 64,
                f"height, width must be multiples of 32, >= 64 (got {self.height}×{self.width})",
            ),
            (self.batch_size >= 1 and self.epochs >= 1, "batch_size and epochs must be >= 1"),
            (self.lr > 0, f"lr must be > 0 (got {self.lr})"),
            (1 <= self.num_scales <= 4, f"num_scales must be in 1..4 (got {self.num_scales})"),
            (
                self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda"),
                f"device must be auto, cpu or cuda[:N] (got {self.device!r})",
            ),
            (
                self.pretrain in ("none", "imagenet") or self.pretrain.startswith("checkpoint:"),
                f"pretrain must be none, imagenet or checkpoint:<path> (got {self.pretrain!r})",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        check_energy_choice(self.energy_model, self.sram_kb)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> DepthConfig:
        """Builds from a flat dict; unknown keys and uncoercible values are one-line errors."""
        return config_from_dict(cls, config, label="depth ")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def neuron_spec(self) -> NeuronSpec:
        return NeuronSpec(kind=self.neuron, tau=self.tau, v_threshold=self.v_threshold, D=self.D)

