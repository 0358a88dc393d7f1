"""A tiny Ray Tune function trainable with injectable faults, for fault-tolerance tests.

``fault`` chooses what goes wrong at ``fault_epoch``: ``"oom"`` raises the error PyTorch raises
when the GPU runs out of memory (``torch.OutOfMemoryError``; simulated, since CI has no GPU),
``"none"`` trains normally. Everything else behaves like a real trainable: flat config with
unknown keys rejected, one report and checkpoint per epoch, resume from ``tune.get_checkpoint``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {"x": 0.5, "epochs": 3, "sleep_s": 0.0, "fault": "none",
                            "fault_epoch": 1}
OOM_MESSAGE = ("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.19 GiB total "
               "capacity; 75.02 GiB already allocated) [simulated by the fault test]")


def faulty(config: dict[str, Any]) -> None:
    """Reports ``val_acc``/``val_loss`` per epoch; raises the configured fault at its epoch."""
    import torch
    from ray import tune

    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; known: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    start = 1
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = json.loads((Path(directory) / "state.json").read_text())["epoch"] + 1
    for epoch in range(start, int(cfg["epochs"]) + 1):
        time.sleep(float(cfg["sleep_s"]))
        if cfg["fault"] == "oom" and epoch == int(cfg["fault_epoch"]):
            raise torch.OutOfMemoryError(OOM_MESSAGE)
        loss = (float(cfg["x"]) - 0.3) ** 2 + 1.0 / epoch
        metrics = {"epoch": epoch, "val_loss": loss, "val_acc": 1.0 / (1.0 + loss)}
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
