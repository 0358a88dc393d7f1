"""Which trials of a sweep leave it: one by id, the accuracy–energy front, or the top k.

Reads only the trial table (``reporting.results.load_table``, Parquet) and ``sweep.json``
(JSON) through ``storage.sweepdir``; nothing is unpickled. The front is the report's own
(``reporting.front.snn_front``: completed spiking trials, the sweep's metric against
``last/energy_mj``), so the exported set is the set of points drawn on ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snnsearch.reporting.export_links import EXPORT_DIR
from snnsearch.storage import sweepdir as _storage

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXPORT_DIR", "latest_checkpoint", "select_rows", "sweep_settings"]


def sweep_settings(sweep_dir: str) -> dict[str, Any]:
    text = _storage.read_text(_storage.join(sweep_dir, "sweep.json"))
    if text is None:
        raise ValueError(f"{sweep_dir} is not a sweep directory (no sweep.json); pass the "
                         "directory a sweep wrote (<storage>/<name>)")
    return json.loads(text)


def _ranked(table: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    from snnsearch.reporting.front import ann_mask

    column = f"best_{metric}" if f"best_{metric}" in table else f"last/{metric}"
    ok = table[(table["status"] == "completed").to_numpy() & ~ann_mask(table)]
    ok = ok[ok[column].notna()] if column in ok else ok.iloc[:0]
    return ok.sort_values(column, ascending=mode == "min", kind="stable")


def select_rows(sweep_dir: str, *, trial: str | None = None, front: bool = False,
                top_k: int | None = None) -> list[dict[str, Any]]:
    """Rows of ``trials.parquet`` to export (one of ``trial``, ``front``, ``top_k``).

    Raises:
        ValueError: no such trial, or no completed spiking trial to export (one line).
    """
    from snnsearch.reporting.front import front_columns, snn_front
    from snnsearch.reporting.results import load_table

    settings = sweep_settings(sweep_dir)
    metric, mode = settings["metric"], settings["mode"]
    table = load_table(sweep_dir)
    if trial is not None:
        rows = table[table["trial_id"].astype(str) == trial]
        if rows.empty:
            known = ", ".join(table["trial_id"].astype(str).head(8))
            raise ValueError(f"no trial {trial!r} in {sweep_dir} (trials: {known}, ...)")
        return rows.to_dict("records")
    if front:
        cols = front_columns(table, metric)
        if cols is not None:
            picked = snn_front(table, cols[0], mode, cols[1])
            if not picked.empty:
                return picked.to_dict("records")
    ranked = _ranked(table, metric, mode)
    if ranked.empty:
        raise ValueError(f"{sweep_dir}: no completed spiking trial to export")
    return ranked.head(top_k or 1).to_dict("records")


def latest_checkpoint(row: dict[str, Any]) -> Path:
    """The trial's newest ``checkpoint_*/state.pt`` directory (local sweep directories)."""
    trial_dir = Path(str(row["path"]))
    if _storage.is_uri(str(row["path"])):
        raise ValueError(f"trial {row['trial_id']}: its checkpoints are at {row['path']}; copy "
                         "the sweep directory to a local path to export it")
    found = sorted(trial_dir.glob("checkpoint_*/state.pt"))
    if not found:
        raise ValueError(f"trial {row['trial_id']} kept no checkpoint in {trial_dir}")
    return found[-1].parent
