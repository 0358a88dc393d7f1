"""Tiny real Ray function trainables for testing the sweep engine without datasets.

``quadratic`` behaves like the real trainables as far as the tuner can see: flat config with
unknown keys rejected, one ``ray.tune.report`` per epoch with the shared metric keys, a checkpoint
directory holding ``state.json`` and ``figures/*.png``, and resume from ``tune.get_checkpoint()``.
Its objective is a known quadratic, so tests can check that ASHA keeps the better trials.
``fail_epoch`` makes a trial raise at that epoch (the "deliberately failing variant").
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from snnsearch import constants as C

DEFAULTS: dict[str, Any] = {
    "x": 0.0,
    "y": 0.0,
    "neuron": "lif",
    "tau": 2.0,
    "D": 1,
    "T": 4,
    "epochs": 3,
    "seed": 0,
    "sleep_s": 0.0,
    "fail_epoch": -1,
    "data_dir": None,
}


class QuadraticError(RuntimeError):
    """Raised by the failing variant so tests can find the message in MLflow."""


def objective(cfg: dict[str, Any], epoch: int) -> float:
    """Loss of ``cfg`` after ``epoch`` epochs: minimum 0 at x=3, y=-1, shrinking 1/epoch term."""
    return (cfg["x"] - 3.0) ** 2 + (cfg["y"] + 1.0) ** 2 + 1.0 / epoch


def quadratic(config: dict[str, Any]) -> None:
    """Ray function trainable: one report (with checkpoint and figures) per epoch.

    Args:
        config: keys from ``DEFAULTS``; anything else raises ValueError like the real trainables.
    """
    from ray import tune

    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; known: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    start = 1
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt:
            start = json.loads((Path(ckpt) / "state.json").read_text())["epoch"] + 1
    for epoch in range(start, int(cfg["epochs"]) + 1):
        t0 = time.perf_counter()
        time.sleep(float(cfg["sleep_s"]))
        if epoch == cfg["fail_epoch"]:
            raise QuadraticError(f"deliberate failure at epoch {epoch}")
        metrics = _metrics(cfg, epoch, time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            _write_checkpoint(Path(tmp), epoch, metrics)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _metrics(cfg: dict[str, Any], epoch: int, elapsed: float) -> dict[str, Any]:
    loss = objective(cfg, epoch)
    rate = 1.0 / (1.0 + abs(cfg["x"]))
    metrics: dict[str, Any] = {
        C.EPOCH: epoch,
        C.TRAIN_LOSS: loss * 1.1,
        C.VAL_LOSS: loss,
        C.VAL_ACC: 1.0 / (1.0 + loss),
        C.EPOCH_TIME: max(elapsed, 1e-6),
        C.IMAGES_PER_S: 1000.0 / max(elapsed, 1e-3),
        C.ENERGY_MJ: 0.1 * cfg["T"] * rate * max(cfg["D"], 1),
        f"{C.FIRING_RATE_PREFIX}layer1": rate,
        f"{C.FIRING_RATE_PREFIX}layer2": rate / 2,
        C.OUTPUT_RATE: rate / 4,
        C.SILENT_FRACTION: 1.0 - rate,
    }
    if epoch == int(cfg["epochs"]):
        metrics[C.TEST_ACC] = metrics[C.VAL_ACC]
    return metrics


def _write_checkpoint(directory: Path, epoch: int, metrics: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (directory / "state.json").write_text(json.dumps({"epoch": epoch}))
    figures = directory / "figures"
    figures.mkdir()
    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    layers = [k for k in metrics if k.startswith(C.FIRING_RATE_PREFIX)]
    ax.bar(range(len(layers)), [metrics[k] for k in layers])
    ax.set_title(f"epoch {epoch}")
    fig.savefig(figures / "firing_rates.png")
    plt.close(fig)
