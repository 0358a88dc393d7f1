"""A table-backed trainable: replays recorded learning curves through the real engine.

``bench/replay_record.py`` trains a grid of MNIST SNN configurations once with the real
classification trainable and stores every epoch's metrics in a Parquet table. :func:`replay` is
a Ray Tune function trainable that, for a sampled configuration, reports the recorded curve of
the nearest recorded configuration epoch by epoch (same metric keys as the real trainable, a
checkpoint per epoch, resume from ``tune.get_checkpoint()``), so searchers, schedulers, the
silence stopper and resume run exactly as in a real sweep while a sweep costs seconds.

Nearest: same ``model`` and ``neuron``; then the smallest sum over the ordinal dimensions of
the level distance (index difference / (levels - 1)); ties to the lowest ``config_id``. With
the sampled point on the recorded grid's levels this is an exact match whenever that point was
recorded.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from snnsearch import constants as K

TIME_THIS_ITER_S = "time_this_iter_s"  # Ray's key (ray.air.constants), without importing Ray

DIMS = ("T", "tau", "D", "v_threshold", "lr", "hidden_layers", "hidden_width", "conv_blocks",
        "channels", "blocks", "embed_dim")
DEFAULTS: dict[str, Any] = {
    "model": "csnn", "neuron": "lif", "T": 4, "tau": 2.0, "D": 1, "v_threshold": 1.0,
    "lr": 1e-3, "hidden_layers": 0, "hidden_width": 128, "conv_blocks": 1, "channels": 8,
    "blocks": 1, "embed_dim": 16,
    "table": "", "epochs": 5, "seed": 0, "sleep_s": 0.0, "checkpoint": True,
}


def _active(dim: str, cfg: Mapping[str, Any]) -> bool:
    if dim == "tau":
        return cfg["neuron"] != "if"
    if dim == "D":
        return cfg["neuron"] == "ilif"
    if dim in ("hidden_layers", "hidden_width"):
        return cfg["model"] == "fc"
    if dim in ("conv_blocks", "channels"):
        return cfg["model"] == "csnn"
    if dim in ("blocks", "embed_dim"):
        return cfg["model"] == "spikformer"
    return True


def epoch_cost_s(row: Mapping[str, Any]) -> float:
    """Compute seconds one recorded epoch cost: the recorder's CPU seconds (training, validation
    and energy probe; ``cpu_s``) where recorded, else the trainable's ``epoch_time_s`` (the
    MNIST table predates ``cpu_s``)."""
    cpu = row.get("cpu_s")
    if cpu is not None and math.isfinite(float(cpu)):
        return float(cpu)
    return float(row["epoch_time_s"])


class ReplayTable:
    """Recorded curves by ``config_id`` with a nearest-configuration lookup."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.curves: dict[int, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=lambda r: (r["config_id"], r["epoch"])):
            # Tables recorded before a dimension existed hold its default (MNIST: no Spikformer).
            row = {**{d: DEFAULTS[d] for d in DIMS}, **row}
            self.curves.setdefault(int(row["config_id"]), []).append(row)
        self.configs = {cid: curve[0] for cid, curve in self.curves.items()}
        # Levels of each dimension where it is active (tau: leaky neurons, D: I-LIF, depth
        # knobs: their model family), so placeholders do not distort the spacing.
        self.levels = {d: sorted({c[d] for c in self.configs.values() if _active(d, c)} or {0})
                       for d in DIMS}

    @classmethod
    def load(cls, path: str | Path) -> ReplayTable:
        import pyarrow.parquet as pq

        return cls(pq.read_table(str(path)).to_pylist())

    def _level(self, dim: str, value: Any) -> float:
        levels = self.levels[dim]
        if len(levels) < 2:
            return 0.0
        # Position of the closest recorded level, scaled to [0, 1].
        idx = min(range(len(levels)), key=lambda i: abs(float(levels[i]) - float(value)))
        return idx / (len(levels) - 1)

    def nearest(self, config: Mapping[str, Any]) -> int:
        """``config_id`` of the recorded configuration nearest to ``config``."""
        cfg = {**DEFAULTS, **config}
        same = [cid for cid, c in self.configs.items()
                if c["model"] == cfg["model"] and c["neuron"] == cfg["neuron"]]
        if not same:
            raise ValueError(f"no recorded configuration with model={cfg['model']!r} "
                             f"neuron={cfg['neuron']!r}; record a larger grid")
        want = {d: self._level(d, cfg[d]) for d in DIMS}

        def distance(cid: int) -> tuple[float, int]:
            c = self.configs[cid]
            return sum(abs(self._level(d, c[d]) - want[d]) for d in DIMS), cid

        return min(same, key=distance)


@functools.lru_cache(maxsize=4)
def load_table(path: str) -> ReplayTable:
    """The table at ``path``, loaded once per worker process."""
    return ReplayTable.load(path)


def epoch_metrics(row: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics the real classify trainable reports, from one recorded row."""
    max_output = int(row["D"]) if row["neuron"] == "ilif" else 1
    rate = float(row["output_firing_rate"])
    out = {
        K.EPOCH: int(row["epoch"]), K.VAL_ACC: float(row["val_acc"]),
        K.VAL_LOSS: float(row["val_loss"]), K.TRAIN_LOSS: float(row["train_loss"]),
        K.TRAIN_ACC: float(row["train_acc"]), K.ENERGY_MJ: float(row["energy_mj"]),
        K.EPOCH_TIME: float(row["epoch_time_s"]), K.OUTPUT_RATE: rate,
        K.OUTPUT_RATE_NORM: rate / max_output, K.SILENT_FRACTION: float(row["silent_fraction"]),
        "replay_config_id": int(row["config_id"]),
        # Ray adds this to the trial's time_total_s (kept across checkpoints), so a cost-aware
        # scheduler (time_attr time_total_s) and a compute budget see the recorded cost, not the
        # replay's microseconds.
        TIME_THIS_ITER_S: epoch_cost_s(row),
    }
    for layer, value in json.loads(row.get("firing_rates") or "{}").items():
        out[K.FIRING_RATE_PREFIX + layer] = float(value)
    return out


def replay(config: dict[str, Any]) -> None:
    """Ray function trainable: the recorded curve of the nearest configuration, one report per
    epoch (with a checkpoint holding the epoch unless ``checkpoint`` is False).

    Config keys: the grid dimensions, ``table`` (Parquet path), ``epochs`` (at most the recorded
    count), ``sleep_s`` per epoch (tests that interrupt a sweep), ``checkpoint``, ``seed``.
    A recorded divergence raises ``FloatingPointError`` at its epoch, as the real trainable does.
    """
    from ray import tune

    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown replay config keys {unknown}; known: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    if not cfg["table"]:
        raise ValueError("replay needs config key 'table' (the recorded Parquet table)")
    table = load_table(str(cfg["table"]))
    curve = table.curves[table.nearest(cfg)]
    epochs = int(cfg["epochs"])
    if epochs > len(curve) and not curve[-1].get("error"):
        raise ValueError(f"epochs={epochs} but only {len(curve)} epochs were recorded")
    start = 1
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt:
            start = json.loads((Path(ckpt) / "state.json").read_text())["epoch"] + 1
    for epoch in range(start, epochs + 1):
        row = curve[epoch - 1]
        if row.get("error"):
            raise FloatingPointError(f"recorded divergence: {row['error']}")
        if cfg["sleep_s"]:
            time.sleep(float(cfg["sleep_s"]))
        metrics = epoch_metrics(row)
        if not all(math.isfinite(v) for v in metrics.values() if isinstance(v, float)):
            raise FloatingPointError(f"non-finite recorded metrics at epoch {epoch}")
        if not cfg["checkpoint"]:
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
