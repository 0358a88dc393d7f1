"""Per-epoch history of every trial: one row per (trial, epoch) with the reported metrics.

Learning curves and the hypervolume over trial-epochs need every epoch, not the last one the
trial table keeps. The sweep writes ``history.parquet`` beside ``trials.parquet`` from Ray's
``Result.metrics_dataframe``; for a sweep without it (older, or the driver died first) the
history is read back from each trial folder's ``result.json`` (Ray's JSON-lines log).

Columns: ``trial_id``, ``training_iteration``, ``timestamp`` (when Ray received the result; orders
results across trials) and every numeric metric.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snnsearch.storage import sweepdir as _storage

if TYPE_CHECKING:
    import pandas as pd
    from ray.tune import Result

HISTORY_FILE = "history.parquet"
_KEEP = ("trial_id", "training_iteration", "timestamp", "time_total_s")
_SKIP = frozenset({"pid", "done", "time_since_restore", "iterations_since_restore",
                   "warmup_time", "should_checkpoint", "date", "hostname", "node_ip",
                   "checkpoint_dir_name", "experiment_tag", "config"})


def _clean(record: Mapping[str, Any], trial_id: str) -> dict[str, Any]:
    row: dict[str, Any] = {"trial_id": trial_id}
    for key, value in record.items():
        if key in _SKIP or key == "trial_id" or key.startswith("config/"):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        row[key] = float(value) if math.isfinite(float(value)) else None
    return row


def history_rows(results: Iterable[Result], trial_ids: Sequence[str]) -> list[dict[str, Any]]:
    """History rows of a ``ResultGrid``; ``trial_ids`` in the same order (the table's)."""
    rows: list[dict[str, Any]] = []
    for result, trial_id in zip(results, trial_ids):
        frame = result.metrics_dataframe
        if frame is None or frame.empty:
            continue
        rows += [_clean(rec, trial_id) for rec in frame.to_dict("records")]
    return rows


def write_history(rows: Sequence[Mapping[str, Any]], sweep_dir: str) -> str:
    """Writes ``history.parquet`` (local path or URI) atomically and signs it with the sweep's
    tables (``storage.signing``); returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from snnsearch.reporting.results import to_arrow
    from snnsearch.storage import signing

    path = _storage.join(sweep_dir, HISTORY_FILE)
    buf = pa.BufferOutputStream()
    pq.write_table(to_arrow(rows), buf)
    _storage.write_bytes(path, buf.getvalue().to_pybytes())
    signing.sign_written(sweep_dir, HISTORY_FILE)
    return path


def load_history(sweep_dir: str, table: pd.DataFrame) -> pd.DataFrame:
    """The sweep's history: ``history.parquet``, else rebuilt from the trials' ``result.json``."""
    import pandas as pd

    from snnsearch.reporting.results import read_signed_table

    stored = read_signed_table(sweep_dir, HISTORY_FILE)
    if stored is not None:
        return stored
    rows: list[dict[str, Any]] = []
    for trial_id, folder in zip(table.get("trial_id", []), table.get("path", [])):
        log = Path(str(folder)) / "result.json"
        if not log.is_file():
            continue
        for line in log.read_text().splitlines():
            if line.strip():
                rows.append(_clean(json.loads(line), str(trial_id)))
    return pd.DataFrame(rows, columns=None if rows else list(_KEEP))
