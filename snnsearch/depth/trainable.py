"""Self-supervised monocular depth trainable (monodepth2 protocol, spiking or ANN encoder).

``train_depth(config)`` builds everything from a flat config (:class:`DepthConfig`), trains, and
per epoch reports the losses, the seven Eigen metrics on the val split, epoch time, images/s,
firing rates and estimated energy per image (averaged over ``energy_images`` validation images),
together with a checkpoint directory (depth (+ pose) nets, optimiser, scheduler, epoch, RNG
states, config; ``energy/layers.csv``, the per-layer table). ``tune_depth`` is the Ray Tune
trainable.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, SequentialSampler

from snnsearch import constants as C
from snnsearch.depth.config import DepthConfig
from snnsearch.depth.data.batches import pass_batch
from snnsearch.depth.data.frame_cache import FrameCache, ensure_cache
from snnsearch.depth.data.gt import depth_map, load_gt_for
from snnsearch.depth.data.kitti import (
    GpuAugment,
    KittiRawDataset,
    frame_paths,
    read_split,
    to_unit,
)
from snnsearch.depth.energy import depth_energy
from snnsearch.depth.engine import LossSettings, train_epoch, validate
from snnsearch.depth.models.net import DepthModelSpec, DepthNet, build_depth_net
from snnsearch.depth.splits import check_disjoint, resolve
from snnsearch.depth.state import DepthRun, EpochShuffle, SortedBatches, loader_workers
from snnsearch.energy import EnergyReport, EnergySummary, energy_summary, twin_report
from snnsearch.snn.neurons import NeuronSpec
from snnsearch.training.reporter import LocalReporter, Reporter, report_epoch

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


def data_sources(cfg: DepthConfig) -> tuple[str, str, str, str]:
    """(root, train split, val split, GT path) of ``cfg``; synthetic scenes are generated on
    first use and their "auto" splits are the generator's scene-disjoint files."""
    root, train_split, val_split, gt_path = (
        cfg.data_dir,
        cfg.train_split,
        cfg.val_split,
        cfg.gt_path,
    )
    if cfg.data == "synthetic":
        from snnsearch.depth.data.synthetic_scenes import SyntheticSpec, ensure_synthetic

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
    return root, train_split, val_split, gt_path


def _frame_cache(cfg: DepthConfig, root: str, items: list) -> FrameCache | None:
    """The decoded-frame cache of every frame ``items`` read (built once per node)."""
    if cfg.frame_cache == "off":
        return None
    folder = "" if cfg.frame_cache == "auto" else cfg.frame_cache  # auto: the user cache dir
    return ensure_cache(root, frame_paths(root, items), height=cfg.height, width=cfg.width,
                        cache_dir=folder or None, workers=loader_workers(cfg.num_workers) + 1)


def build_data(cfg: DepthConfig) -> DepthData:
    """Datasets and val GT for ``cfg`` (synthetic scenes are generated on first use)."""
    root, train_split, val_split, gt_path = data_sources(cfg)
    train_items = _items(root, train_split, cfg.max_train_items)
    val_items = _items(root, val_split, cfg.max_val_items)
    for warning in check_disjoint(train_items, val_items, names=(train_split, val_split)):
        log.warning(warning)
    gt_path = str(resolve(root, gt_path)) if gt_path else ""
    known = cfg.pose == "known"
    cache = _frame_cache(cfg, root, [*train_items, *val_items])
    train = KittiRawDataset(
        root, train_items, height=cfg.height, width=cfg.width, known_pose=known, cache=cache
    )
    val = KittiRawDataset(
        root, val_items, height=cfg.height, width=cfg.width, known_pose=known, cache=cache
    )
    # The file's frame ids must cover the val items: another split's GT is an error, not scores
    # against the wrong maps.
    gts = load_gt_for(gt_path, val_items) if gt_path else [depth_map(root, i) for i in val_items]
    return DepthData(train, val, gts)


def _device(cfg: DepthConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _energy(
    net: DepthNet, images: list[torch.Tensor], twin: EnergyReport | None, cfg: DepthConfig
) -> EnergySummary:
    """Every energy model's metrics and the per-layer table, averaged over ``images`` (the same
    ``energy_images`` validation images for every epoch and trial: rates vary by image)."""
    report = depth_energy(net, images, timesteps=net.timesteps, spiking=net.spiking,
                          batch_size=cfg.batch_size)
    return energy_summary(report, twin=twin, model=cfg.energy_model, sram_kb=cfg.sram_kb)


def _twin_counts(cfg: DepthConfig, image: torch.Tensor) -> EnergyReport | None:
    """Counts of the ANN twin (same encoder with ReLU, T=1), once per trial, the global RNG
    untouched; None when the encoder is already an ANN."""
    if cfg.encoder == "resnet" or cfg.neuron == "relu":
        return None
    spec = DepthModelSpec(cfg.encoder, cfg.depth, NeuronSpec(kind="relu"), 1, cfg.num_scales,
                          channels=cfg.channels)
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
    from snnsearch.depth.figures import plot_depth_predictions

    count = min(count, len(data.val))
    images = to_unit(torch.stack([data.val[i].frames[0] for i in range(count)]).to(device))
    net.eval()
    disparities = net(images)[0]
    _reset(net)
    folder.mkdir(parents=True, exist_ok=True)
    plot_depth_predictions(images, disparities, list(data.gt_depths)[:count],
                           folder / "depth_predictions.png")


def _loaders(
    cfg: DepthConfig, data: DepthData, device: torch.device
) -> tuple[DataLoader, DataLoader, EpochShuffle]:
    """Train and val loaders built once: workers follow the trial's CPUs and stay alive across
    epochs and hand over whole batches (one gather each, ``KittiRawDataset.__getitems__``);
    pinned memory lets the host→GPU copies overlap the step."""
    workers = loader_workers(cfg.num_workers)
    pin = device.type == "cuda"
    common: dict[str, Any] = {
        "num_workers": workers,
        "collate_fn": pass_batch,
        "pin_memory": pin,
        "persistent_workers": workers > 0,
    }
    for dataset in (data.train, data.val):
        if isinstance(dataset, KittiRawDataset):
            dataset.pin_batches = pin and workers == 0  # gathered straight into pinned memory
    shuffle = EpochShuffle(len(data.train), seed=cfg.seed)
    val_order = SequentialSampler(data.val)  # validation order is the GT's order
    return (
        DataLoader(data.train, batch_sampler=SortedBatches(shuffle, batch_size=cfg.batch_size),
                   **common),
        DataLoader(data.val, batch_sampler=SortedBatches(val_order, batch_size=cfg.batch_size),
                   **common),
        shuffle,
    )


def train_depth(config: dict[str, Any], reporter: Reporter | None = None) -> dict[str, Any]:
    """Trains depth + pose networks from a flat config; returns the last epoch's metrics.

    Args:
        config: flat dict of :class:`DepthConfig` keys.
        reporter: where metrics/checkpoints go; None → a :class:`LocalReporter` keeping no
            checkpoints.
    """
    cfg = DepthConfig.from_dict(config)
    reporter = reporter or LocalReporter()  # metrics only: no checkpoint folder left behind
    device = _device(cfg)
    data = build_data(cfg)
    run = DepthRun(cfg, device)
    restore = reporter.restore_dir()
    if restore is not None:
        run.restore(restore)
    settings = LossSettings(smoothness=cfg.smoothness)
    augment = GpuAugment().to(device) if cfg.augment else None
    train_loader, val_loader, shuffle = _loaders(cfg, data, device)
    energy_images = [
        to_unit(data.val[i].frames[0]) for i in range(min(cfg.energy_images, len(data.val)))
    ]
    metrics: dict[str, Any] = {}
    twin: Any = _UNSET
    while run.epoch < cfg.epochs:
        run.epoch += 1
        start = time.perf_counter()
        shuffle.set_epoch(run.epoch)
        train = train_epoch(run.forward_net, run.pose_net, train_loader, run.optimizer, device,
                            settings, augment, cfg.precision)
        run.scheduler.step()
        errors, val_loss, rates = validate(run.forward_net, val_loader, data.gt_depths, device,
                                           settings, cfg.precision)
        if twin is _UNSET:
            twin = _twin_counts(cfg, energy_images[0][None].to(device))
        energy = _energy(run.depth_net, energy_images, twin, cfg)
        metrics = {
            C.EPOCH: run.epoch,
            C.TRAIN_LOSS: train["train_loss"],
            C.PHOTOMETRIC_LOSS: train["photometric_loss"],
            **({C.VAL_LOSS: val_loss} if val_loss is not None else {}),
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
    from snnsearch.training.reporter import TuneReporter

    train_depth(config, TuneReporter())


__all__ = ["DepthConfig", "build_data", "train_depth", "tune_depth"]
