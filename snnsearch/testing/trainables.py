"""Tiny real Ray function trainables for testing the sweep engine without datasets.

All three behave like the real trainables as far as the tuner can see: flat config with unknown
keys rejected, one ``ray.tune.report`` per epoch with a checkpoint directory holding
``state.json``, and resume from ``tune.get_checkpoint()``. They live in the package (not in
tests/) so Ray worker processes on every node can import them by name.

- ``quadratic``: the shared metric keys and ``figures/*.png``; its objective is a known quadratic,
  so tests can check that ASHA keeps the better trials. ``fail_epoch`` makes a trial raise at that
  epoch (the "deliberately failing variant").
- ``faulty``: ``fault`` chooses what goes wrong at ``fault_epoch``: ``"oom"`` raises the error
  PyTorch raises when the GPU runs out of memory (``torch.OutOfMemoryError``; simulated, since CI
  has no GPU), ``"none"`` trains normally.
- ``epochs_on_nodes``: tells where it ran: every epoch reports the node id, the GPU share Ray
  assigned and the epoch its checkpoint restored from (0 = fresh start). It sleeps ``sleep_s``
  per epoch instead of training, so a multi-node test spends its time on scheduling, node
  failure and restore, which is what it tests.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
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
FAULT_DEFAULTS: dict[str, Any] = {"x": 0.5, "epochs": 3, "sleep_s": 0.0, "fault": "none",
                                  "fault_epoch": 1}
OOM_MESSAGE = ("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.19 GiB total "
               "capacity; 75.02 GiB already allocated) [simulated by the fault test]")
NODE_KEYS = frozenset({"x", "epochs", "sleep_s"})


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
    cfg = _with_defaults(config, DEFAULTS)
    for epoch in range(_restored_epoch() + 1, int(cfg["epochs"]) + 1):
        t0 = time.perf_counter()
        time.sleep(float(cfg["sleep_s"]))
        if epoch == cfg["fail_epoch"]:
            raise QuadraticError(f"deliberate failure at epoch {epoch}")
        metrics = _metrics(cfg, epoch, time.perf_counter() - t0)
        _report(metrics, epoch, lambda directory: _write_figures(directory, epoch, metrics))


def faulty(config: dict[str, Any]) -> None:
    """Reports ``val_acc``/``val_loss`` per epoch; raises the configured fault at its epoch."""
    import torch

    cfg = _with_defaults(config, FAULT_DEFAULTS)
    for epoch in range(_restored_epoch() + 1, int(cfg["epochs"]) + 1):
        time.sleep(float(cfg["sleep_s"]))
        if cfg["fault"] == "oom" and epoch == int(cfg["fault_epoch"]):
            raise torch.OutOfMemoryError(OOM_MESSAGE)
        loss = (float(cfg["x"]) - 0.3) ** 2 + 1.0 / epoch
        _report({"epoch": epoch, "val_loss": loss, "val_acc": 1.0 / (1.0 + loss)}, epoch)


def epochs_on_nodes(config: dict[str, Any]) -> None:
    """Reports ``epochs`` results with a checkpoint each; resumes from ``tune.get_checkpoint``.

    Args:
        config: ``x`` (objective input), ``epochs``, ``sleep_s`` (seconds per epoch).
    """
    import ray

    _check_keys(config, NODE_KEYS)
    restored = _restored_epoch()
    context = ray.get_runtime_context()
    node = context.get_node_id()
    gpu = float(context.get_assigned_resources().get("GPU", 0.0))
    for epoch in range(restored + 1, int(config["epochs"]) + 1):
        time.sleep(float(config["sleep_s"]))
        _report({"epoch": epoch, "val_acc": 1.0 - abs(float(config["x"]) - 0.5) / epoch,
                 "restored_from": restored, "gpu_share": gpu, "node_id": node}, epoch)


def _check_keys(config: Mapping[str, Any], known: Iterable[str]) -> None:
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; known: {sorted(known)}")


def _with_defaults(config: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` over ``defaults``; an unknown key raises like the real trainables."""
    _check_keys(config, defaults)
    return {**defaults, **config}


def _restored_epoch() -> int:
    """The epoch of the checkpoint Tune restored this trial from (0: a fresh start)."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as directory:
        return int(json.loads((Path(directory) / "state.json").read_text())["epoch"])


def _report(metrics: dict[str, Any], epoch: int,
            extra: Callable[[Path], None] | None = None) -> None:
    """``tune.report`` with a checkpoint holding ``state.json`` (and what ``extra`` writes)."""
    from ray import tune

    # In the trial's working dir (Ray's session folder): a worker killed by a fault test would
    # otherwise leave the folder in the temp dir.
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as tmp:
        (Path(tmp) / "state.json").write_text(json.dumps({"epoch": epoch}))
        if extra is not None:
            extra(Path(tmp))
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


def _write_figures(directory: Path, epoch: int, metrics: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = directory / "figures"
    figures.mkdir()
    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    layers = [k for k in metrics if k.startswith(C.FIRING_RATE_PREFIX)]
    ax.bar(range(len(layers)), [metrics[k] for k in layers])
    ax.set_title(f"epoch {epoch}")
    fig.savefig(figures / "firing_rates.png")
    plt.close(fig)
