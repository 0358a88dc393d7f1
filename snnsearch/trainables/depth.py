"""Self-supervised monocular depth trainable (monodepth2 protocol, spiking or ANN encoder).

``train_depth(config)`` builds everything from a flat config (:class:`DepthConfig`), trains, and
per epoch reports the losses, the seven Eigen metrics on the val split, epoch time, images/s,
firing rates and estimated energy per image, together with a checkpoint directory (depth + pose
nets, optimiser, scheduler, epoch, RNG states, config). ``tune_depth`` is the Ray Tune trainable.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from snnsearch import constants as C
from snnsearch.data.kitti import GpuAugment, KittiRawDataset, read_split
from snnsearch.depth.config import MODEL_KEYS, DepthConfig
from snnsearch.depth.engine import LossSettings, collate, train_epoch, validate
from snnsearch.depth.gt import depth_map, load_gt_depths
from snnsearch.depth.splits import check_disjoint, resolve
from snnsearch.energy import (
    EnergyReport,
    EnergySummary,
    energy_summary,
    estimate_energy,
    twin_report,
)
from snnsearch.layers.neurons import NeuronSpec
from snnsearch.models.depth import (
    DepthModelSpec,
    DepthNet,
    build_depth_net,
    build_pose_net,
    set_initial_depth,
)
from snnsearch.trainables.reporting import LocalReporter, Reporter, report_epoch
from snnsearch.training.checkpoint import load_checkpoint

log = logging.getLogger(__name__)
SILENT_RATE = 1e-4  # a neuron layer below this mean rate counts as silent
_UNSET = object()  # the ANN twin is counted at the first epoch, on the first val image


@dataclass
class DepthData:
    train: Dataset
    val: Dataset
    gt_depths: list[np.ndarray]


def _items(root: str, split: str, limit: int) -> list:
    items = read_split(resolve(root, split))
    return items[:limit] if limit > 0 else items


def build_data(cfg: DepthConfig) -> DepthData:
    """Datasets and val GT for ``cfg`` (synthetic scenes are generated on first use)."""
    root, train_split, val_split, gt_path = (
        cfg.data_dir,
        cfg.train_split,
        cfg.val_split,
        cfg.gt_path,
    )
    if cfg.data == "synthetic":
        from snnsearch.data.synthetic_scenes import SyntheticSpec, ensure_synthetic

        spec = SyntheticSpec(
            cfg.num_scenes,
            cfg.frames_per_scene,
            cfg.val_scenes,
            cfg.synthetic_height,
            cfg.synthetic_width,
            cfg.seed,
        )
        synth = ensure_synthetic(cfg.data_dir or None, spec)
        root = str(synth.root)
        train_split = str(synth.train_split) if train_split in ("", "auto") else train_split
        val_split = str(synth.val_split) if val_split in ("", "auto") else val_split
        gt_path = gt_path or str(synth.gt_path)
    train_items = _items(root, train_split, cfg.max_train_items)
    val_items = _items(root, val_split, cfg.max_val_items)
    for warning in check_disjoint(train_items, val_items, names=(train_split, val_split)):
        log.warning(warning)
    gt_path = str(resolve(root, gt_path)) if gt_path else ""
    known = cfg.pose == "known"
    train = KittiRawDataset(
        root, train_items, height=cfg.height, width=cfg.width, known_pose=known
    )
    val = KittiRawDataset(root, val_items, height=cfg.height, width=cfg.width, known_pose=known)
    gts = load_gt_depths(gt_path) if gt_path else [depth_map(root, i) for i in val_items]
    if len(gts) < len(val_items):
        raise ValueError(f"GT file {gt_path} has {len(gts)} maps for {len(val_items)} val items")
    return DepthData(train, val, gts[: len(val_items)])


def _device(cfg: DepthConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _model_spec(cfg: DepthConfig) -> DepthModelSpec:
    return DepthModelSpec(cfg.encoder, cfg.depth, cfg.neuron_spec(), cfg.T, cfg.num_scales)


def _energy(
    net: DepthNet, image: torch.Tensor, twin: EnergyReport | None, cfg: DepthConfig
) -> EnergySummary:
    """Every energy model's metrics and the per-layer table for ``image`` (one counted pass)."""
    report = estimate_energy(net, image, timesteps=net.timesteps, spiking=net.spiking)
    return energy_summary(report, twin=twin, model=cfg.energy_model, sram_kb=cfg.sram_kb)


def _twin_counts(cfg: DepthConfig, image: torch.Tensor) -> EnergyReport | None:
    """Counts of the ANN twin (same encoder with ReLU, T=1), once per trial, the global RNG
    untouched; None when the encoder is already an ANN."""
    if cfg.encoder == "resnet" or cfg.neuron == "relu":
        return None
    spec = DepthModelSpec(cfg.encoder, cfg.depth, NeuronSpec(kind="relu"), 1, cfg.num_scales)
    with torch.random.fork_rng(devices=[]):
        twin = build_depth_net(spec).to(image.device)
    return twin_report(twin, image)


def _rate_metrics(rates: dict[str, float], max_output: int) -> dict[str, float]:
    if not rates:
        return {}  # ANN encoder: no spiking layers
    out = {C.FIRING_RATE_PREFIX + k: v for k, v in rates.items()}
    last = [v for k, v in rates.items() if k.startswith("encoder.layer4.")]
    out[C.OUTPUT_RATE] = float(np.mean(last))
    out[C.OUTPUT_RATE_NORM] = out[C.OUTPUT_RATE] / max_output
    # A share of layers, not of images: its own name (classification's silent_fraction is images).
    out[C.SILENT_LAYER_FRACTION] = float(np.mean([v < SILENT_RATE for v in rates.values()]))
    return out


@torch.no_grad()
def _write_prediction_figure(
    net: DepthNet, data: DepthData, device: torch.device, folder: Path, count: int = 3
) -> None:
    """Input, predicted disparity and GT for the first ``count`` validation frames."""
    from snnsearch.depth.engine import _reset
    from snnsearch.reporting.depth_figures import plot_depth_predictions

    count = min(count, len(data.val))
    images = torch.stack([data.val[i].frames[0] for i in range(count)]).to(device)
    net.eval()
    disparities = net(images)[0]
    _reset(net)
    folder.mkdir(parents=True, exist_ok=True)
    plot_depth_predictions(images, disparities, list(data.gt_depths)[:count],
                           folder / "depth_predictions.png")


def _check_resume(saved: dict[str, Any], cfg: DepthConfig, directory: str) -> None:
    differing = [k for k in MODEL_KEYS if saved.get(k) != getattr(cfg, k)]
    if differing:
        raise ValueError(
            f"checkpoint {directory} was trained with other model keys: "
            + ", ".join(f"{k}={saved.get(k)!r} (config {getattr(cfg, k)!r})" for k in differing)
        )


class _Run:
    """The models, optimiser and scheduler of one run, with checkpoint save/restore."""

    def __init__(self, cfg: DepthConfig, device: torch.device) -> None:
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.depth_net = build_depth_net(_model_spec(cfg), cfg.pretrain).to(device)
        if cfg.init_depth > 0:
            set_initial_depth(self.depth_net, cfg.init_depth)
        self.pose_net = build_pose_net(cfg.pretrain if cfg.encoder == "resnet" else "none").to(
            device
        )
        params = list(self.depth_net.parameters()) + list(self.pose_net.parameters())
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, cfg.scheduler_step, 0.1)
        self.epoch = 0

    def state(self) -> dict[str, Any]:
        return {
            "model": self.depth_net.state_dict(),
            "pose": self.pose_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "config": self.cfg.as_dict(),
        }

    def restore(self, directory: str) -> None:
        state = load_checkpoint(directory)
        _check_resume(state.get("config", {}), self.cfg, directory)
        self.depth_net.load_state_dict(state["model"])
        self.pose_net.load_state_dict(state["pose"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        torch.set_rng_state(state["rng_torch"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])


def train_depth(config: dict[str, Any], reporter: Reporter | None = None) -> dict[str, Any]:
    """Trains depth + pose networks from a flat config; returns the last epoch's metrics.

    Args:
        config: flat dict of :class:`DepthConfig` keys.
        reporter: where metrics/checkpoints go; None → a :class:`LocalReporter` in a temp dir.
    """
    cfg = DepthConfig.from_dict(config)
    reporter = reporter or LocalReporter(tempfile.mkdtemp(prefix="snnsearch_depth_"))
    device = _device(cfg)
    data = build_data(cfg)
    run = _Run(cfg, device)
    restore = reporter.restore_dir()
    if restore is not None:
        run.restore(restore)
    settings = LossSettings(smoothness=cfg.smoothness)
    augment = GpuAugment().to(device) if cfg.augment else None
    val_loader = DataLoader(
        data.val,
        batch_size=cfg.batch_size,
        shuffle=False,
        num_workers=cfg.num_workers,
        collate_fn=collate,
    )
    metrics: dict[str, Any] = {}
    twin: Any = _UNSET
    while run.epoch < cfg.epochs:
        run.epoch += 1
        start = time.perf_counter()
        # Shuffle order is a function of (seed, epoch), so a resumed run sees the same batches.
        loader = DataLoader(
            data.train,
            batch_size=cfg.batch_size,
            shuffle=True,
            drop_last=False,
            num_workers=cfg.num_workers,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(cfg.seed * 1000 + run.epoch),
        )
        train = train_epoch(
            run.depth_net, run.pose_net, loader, run.optimizer, device, settings, augment
        )
        run.scheduler.step()
        errors, val_loss, rates = validate(
            run.depth_net, run.pose_net, val_loader, data.gt_depths, device, settings
        )
        probe = data.val[0].frames[:1].to(device)
        if twin is _UNSET:
            twin = _twin_counts(cfg, probe)
        energy = _energy(run.depth_net, probe, twin, cfg)
        metrics = {
            C.EPOCH: run.epoch,
            C.TRAIN_LOSS: train["train_loss"],
            C.PHOTOMETRIC_LOSS: train["photometric_loss"],
            C.VAL_LOSS: val_loss,
            **errors.as_dict(),
            C.EPOCH_TIME: time.perf_counter() - start,
            C.IMAGES_PER_S: train["train_images_per_s"],
            **energy.metrics,
            **_rate_metrics(rates, cfg.neuron_spec().max_output),
        }
        report_epoch(reporter, metrics, run.state(),
                     lambda folder: _write_prediction_figure(run.depth_net, data, device, folder),
                     energy)
    return metrics


def tune_depth(config: dict[str, Any]) -> None:
    """Ray Tune function trainable (reports through ``ray.tune.report``)."""
    from snnsearch.trainables.reporting import TuneReporter

    train_depth(config, TuneReporter())


__all__ = ["DepthConfig", "build_data", "train_depth", "tune_depth"]
