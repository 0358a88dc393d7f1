"""MNIST / FashionMNIST classification trainable: one epoch → one report with a checkpoint.

Usable from plain Python (``train_classifier(config)``) and as a Ray Tune function trainable
(``tune_classifier``). A checkpoint holds model, optimizer, scheduler, epoch, RNG states and the
config, so a resumed trial continues exactly where it stopped.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron

from snnsearch import constants as K
from snnsearch.classify.config import ClassifyConfig
from snnsearch.classify.data import load_classification
from snnsearch.classify.loop import LOSSES, evaluate, train_one_epoch
from snnsearch.classify.models import create_model
from snnsearch.energy.counting import EnergyReport
from snnsearch.energy.metrics import energy_summary, twin_report
from snnsearch.snn.monitoring import spike_stats
from snnsearch.snn.spike_figures import plot_output_rates, plot_spike_maps
from snnsearch.training.checkpoint import load_checkpoint
from snnsearch.training.optim import build_optimizer, resolve_device
from snnsearch.training.pretrain import load_pretrained, transfer_weights
from snnsearch.training.reporter import LocalReporter, Reporter, TuneReporter, report_epoch


def output_layer_name(model: nn.Module) -> str | None:
    """The last spiking layer: the rate readout for fc/csnn, the last block's neuron for Spikformer."""
    names = [n for n, m in model.named_modules() if isinstance(m, neuron.BaseNode)]
    return names[-1] if names else None


def _loss_name(cfg: ClassifyConfig) -> str:
    if cfg.loss != "auto":
        return cfg.loss
    # Rate outputs of fc/csnn SNNs train best on MSE to one-hot (spikingjelly tutorial); logits on CE.
    return "mse" if cfg.model in ("fc", "csnn") else "ce"


def _check_compatible(saved: dict[str, Any], cfg: ClassifyConfig, path: str) -> None:
    diff = [k for k in ClassifyConfig.SHAPE_KEYS if saved.get(k) != getattr(cfg, k)]
    if diff:
        detail = ", ".join(f"{k}: {saved.get(k)!r} vs {getattr(cfg, k)!r}" for k in diff)
        raise ValueError(f"checkpoint {path} was written for another model ({detail}); "
                         "resume with the same config or start a new sweep")


def _pretrain_from_ann(cfg: ClassifyConfig, snn: nn.Module, data, device: torch.device) -> None:
    """``pretrain=ann``: trains the ANN twin for ``pretrain_epochs`` and copies its weights."""
    if cfg.is_ann:
        raise ValueError(f"pretrain=ann needs a spiking model (got {cfg.model}); use pretrain=none")
    ann = create_model(cfg.model, cfg.model_cfg().ann_twin()).to(device)
    optimizer, _ = build_optimizer(cfg, ann)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    for _ in range(cfg.pretrain_epochs):
        train_one_epoch(ann, data.train_x, data.train_y, optimizer=optimizer,
                        loss_fn=LOSSES.get("ce"), batch_size=cfg.batch_size, generator=generator)
    transfer_weights(ann.state_dict(), snn, origin="the ANN twin")


def _twin_counts(cfg: ClassifyConfig, image: torch.Tensor, device: torch.device) -> EnergyReport:
    """The ANN twin's counts depend on shapes only: counted once per trial, on one image, with
    the global RNG untouched (its weight init must not shift a resumed trial's randomness)."""
    with torch.random.fork_rng(devices=[]):
        twin = create_model(cfg.model, cfg.model_cfg().ann_twin()).to(device)
    return twin_report(twin, image)


def _write_figures(stats, labels: torch.Tensor, output_layer: str | None, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    out = stats.records.get(output_layer) if output_layer else None
    if out is not None and out.dim() == 3:  # [T, B, classes]
        rates = out[:, 0].float().mean(0)
        plot_output_rates(rates, int(labels[0]), folder / "output_firing_rates.png")
    conv = next((r for r in stats.records.values() if r.dim() == 5), None)
    if conv is not None:
        plot_spike_maps(conv[:, 0], folder / "spike_maps.png")


def train_classifier(config: dict[str, Any], reporter: Reporter | None = None) -> dict[str, Any]:
    """Trains one configuration, reporting every epoch.

    Args:
        config: flat trial config (keys of :class:`ClassifyConfig`).
        reporter: where metrics/checkpoints go; default: a :class:`LocalReporter` that keeps
            no checkpoints.

    Returns:
        The last epoch's metrics.
    """
    cfg = ClassifyConfig.from_dict(config)
    reporter = reporter or LocalReporter()  # metrics only: no checkpoint folder left behind
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    data = load_classification(cfg.dataset, root=cfg.data_dir, val_size=cfg.val_size,
                               split_seed=cfg.split_seed, train_subset=cfg.train_subset,
                               device=device)
    model = create_model(cfg.model, cfg.model_cfg()).to(device)
    optimizer, scheduler = build_optimizer(cfg, model)
    loss_fn = LOSSES.get(_loss_name(cfg))
    shuffle = torch.Generator().manual_seed(cfg.seed)
    start_epoch = 0
    selected: dict[str, float] = {}  # val_acc, test_acc and epoch of the best val_acc so far
    restore = reporter.restore_dir()
    if restore is not None:
        state = load_checkpoint(restore, map_location=device)
        _check_compatible(state["config"], cfg, restore)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch = int(state["epoch"])
        selected = dict(state.get("selected", {}))
    elif cfg.pretrain == "ann":
        _pretrain_from_ann(cfg, model, data, device)
    elif cfg.pretrain.startswith("checkpoint:"):
        load_pretrained(cfg.pretrain.removeprefix("checkpoint:"), model)
    elif cfg.pretrain != "none":
        raise ValueError(f"pretrain must be none, ann or checkpoint:<path> (got {cfg.pretrain!r})")

    timesteps = 1 if cfg.is_ann else cfg.T
    probe_x, probe_y = data.val_x[: cfg.energy_images], data.val_y[: cfg.energy_images]
    twin = None if cfg.is_ann else _twin_counts(cfg, probe_x[:1], device)
    output_layer = output_layer_name(model)
    metrics: dict[str, Any] = {}
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        train = train_one_epoch(model, data.train_x, data.train_y, optimizer=optimizer,
                                loss_fn=loss_fn, batch_size=cfg.batch_size, generator=shuffle)
        if not math.isfinite(train["train_loss"]):
            # Fail the trial (Ray records it as errored) rather than report NaN as a score.
            raise FloatingPointError(
                f"train_loss is {train['train_loss']} at epoch {epoch} (lr={cfg.lr}, "
                f"optimizer={cfg.optimizer}); the trial diverged: lower lr")
        scheduler.step()
        val = evaluate(model, data.val_x, data.val_y, loss_fn=loss_fn, batch_size=512)
        stats = spike_stats(model, probe_x, timesteps=timesteps, spiking=not cfg.is_ann,
                            output_layer=output_layer, keep_records=cfg.figures)
        energy = energy_summary(stats.energy, twin=twin, model=cfg.energy_model,
                                sram_kb=cfg.sram_kb)
        metrics = {
            K.EPOCH: epoch, K.TRAIN_LOSS: train["train_loss"], K.TRAIN_ACC: train["train_acc"],
            K.VAL_LOSS: val["loss"], K.VAL_ACC: val["acc"], K.EPOCH_TIME: train["seconds"],
            K.IMAGES_PER_S: train["images"] / train["seconds"], **energy.metrics,
            **{K.FIRING_RATE_PREFIX + name: rate for name, rate in stats.layer_rates.items()},
        }
        if output_layer is not None:  # ANN baselines have no spikes to be silent with
            metrics |= {K.OUTPUT_RATE: stats.output_rate, K.SILENT_FRACTION: stats.silent_fraction,
                        K.OUTPUT_RATE_NORM: stats.output_rate / cfg.neuron_spec().max_output}
        if val["acc"] > selected.get(K.VAL_ACC, -1.0):
            # Test only when val improves: the selected epoch's test accuracy without a test
            # pass every epoch.
            test = evaluate(model, data.test_x, data.test_y, loss_fn=loss_fn, batch_size=512)
            selected = {K.VAL_ACC: val["acc"], K.TEST_ACC: test["acc"], K.EPOCH: epoch}
        metrics |= {K.SELECTED_TEST_ACC: selected[K.TEST_ACC],
                    K.SELECTED_EPOCH: int(selected[K.EPOCH])}
        if epoch == cfg.epochs:
            metrics[K.TEST_ACC] = selected[K.TEST_ACC] if selected[K.EPOCH] == epoch else (
                evaluate(model, data.test_x, data.test_y, loss_fn=loss_fn, batch_size=512)["acc"])
        state = {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch, "config": cfg.to_dict(),
            "shuffle_rng": shuffle.get_state(), "torch_rng": torch.get_rng_state(),
            "selected": selected,
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        }
        figures = partial(_write_figures, stats, probe_y, output_layer) if cfg.figures else None
        report_epoch(reporter, metrics, state, figures, energy)
    return metrics


def tune_classifier(config: dict[str, Any]) -> None:
    """Ray Tune function trainable."""
    train_classifier(config, TuneReporter())
