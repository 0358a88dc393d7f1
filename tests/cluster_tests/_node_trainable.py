"""A tiny Ray Tune function trainable that tells where it ran: every epoch reports the node id,
the GPU share Ray assigned, and the epoch its checkpoint restored from (0 = fresh start).

It sleeps ``sleep_s`` per epoch instead of training, so a multi-node test spends its time on
scheduling, node failure and restore, which is what it tests, and not on arithmetic.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

KNOWN = {"x", "epochs", "sleep_s"}


def epochs_on_nodes(config: dict[str, Any]) -> None:
    """Reports ``epochs`` results with a checkpoint each; resumes from ``tune.get_checkpoint``.

    Args:
        config: ``x`` (objective input), ``epochs``, ``sleep_s`` (seconds per epoch).
    """
    import ray
    from ray import tune

    unknown = sorted(set(config) - KNOWN)
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; known: {sorted(KNOWN)}")
    restored = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            restored = json.loads((Path(directory) / "state.json").read_text())["epoch"]
    context = ray.get_runtime_context()
    node = context.get_node_id()
    gpu = float(context.get_assigned_resources().get("GPU", 0.0))
    for epoch in range(restored + 1, int(config["epochs"]) + 1):
        time.sleep(float(config["sleep_s"]))
        metrics = {"epoch": epoch, "val_acc": 1.0 - abs(float(config["x"]) - 0.5) / epoch,
                   "restored_from": restored, "gpu_share": gpu, "node_id": node}
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
