"""The trial table: one row per trial with config, best and last metrics, status, epochs, time.

Column scheme (flat, so Parquet, pandas and MLflow agree)::

    trial_id, status, error, epochs_run, time_total_s, path,
    best_<metric>, best_epoch, config/<key>..., last/<metric>...

Built from Ray's ``ResultGrid`` after ``fit()`` (in the driver, from its own Trial objects) and
read back from Parquet only: never rebuilt from Ray's pickled experiment state (see
:func:`load_table`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from snnsearch.constants import STOP_REASON
from snnsearch.storage import signing
from snnsearch.storage import sweepdir as _storage
from snnsearch.tracking.summary import error_headline, trial_status

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from ray.tune import Result

TABLE_FILE = "trials.parquet"
_BOOKKEEPING = frozenset(
    {"timestamp", "pid", "done", "time_since_restore", "iterations_since_restore",
     "warmup_time", "should_checkpoint", "trial_id", "date", "hostname", "node_ip",
     "config", "checkpoint_dir_name", "experiment_tag"}
)


def row_from_result(result: Result, *, metric: str, mode: str) -> dict[str, Any]:
    """One table row from a Tune ``Result`` (errored trials included)."""
    last = dict(result.metrics or {})
    config = dict(result.config or {})
    history = result.metrics_dataframe
    epochs_run = last.get("training_iteration")
    row: dict[str, Any] = {
        "trial_id": last.get("trial_id") or _trial_id_from_path(result.path),
        "status": trial_status(
            errored=result.error is not None, epochs_run=epochs_run,
            planned_epochs=config.get("epochs"), stop_reason=last.get(STOP_REASON),
        ),
        "error": error_headline(result.error),
        "epochs_run": int(epochs_run or 0),
        "time_total_s": float(last.get("time_total_s") or 0.0),
        "path": str(result.path),
    }
    row[f"best_{metric}"], row["best_epoch"] = _best(history, metric, mode)
    row.update({f"config/{k}": v for k, v in config.items()})
    row.update(
        {f"last/{k}": v for k, v in last.items()
         if k not in _BOOKKEEPING and isinstance(v, int | float | str) and not isinstance(v, bool)}
    )
    return row


def rows_from_results(results: Iterable[Result], *, metric: str, mode: str) -> list[dict]:
    """Rows for every trial of a ``ResultGrid`` (or any iterable of ``Result``)."""
    return [row_from_result(r, metric=metric, mode=mode) for r in results]


def to_arrow(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """A pyarrow table from rows; columns mixing strings and numbers become strings."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {}
    for key in dict.fromkeys(k for r in rows for k in r):
        values = [r.get(key) for r in rows]
        kinds = {_kind(v) for v in values if v is not None}
        if len(kinds) > 1:
            values = [None if v is None else str(v) for v in values]
        columns[key] = values
    return pa.table(columns) if columns else pa.table({"trial_id": pa.array([], pa.string())})


def write_table(rows: Sequence[Mapping[str, Any]], sweep_dir: str, *,
                file: str = TABLE_FILE) -> str:
    """Writes ``trials.parquet`` (or ``file``) into the sweep directory (local or URI)
    atomically (a reader or a crash never sees half a table) and signs it when the directory
    is a signed sweep; returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _storage.join(sweep_dir, file)
    buf = pa.BufferOutputStream()
    pq.write_table(to_arrow(rows), buf)
    _storage.write_bytes(path, buf.getvalue().to_pybytes())
    signing.sign_written(sweep_dir, file)
    return path


class MissingTable(FileNotFoundError):
    """The sweep directory has no trial table (one line: what is missing and what to do)."""


def load_table(sweep_dir: str, *, file: str = TABLE_FILE) -> pd.DataFrame:
    """The sweep's trial table, from its Parquet file only.

    Nothing else in the directory is read: Ray's experiment state (``experiment_state-*.json``,
    ``tuner.pkl``) holds cloudpickled trial records, and unpickling storage runs code, so a
    sweep whose driver died before writing the table is finished with ``--resume`` (which
    checks the state's signatures first), not rebuilt here. A table that the sweep's signed
    manifest lists with other bytes is refused.

    Raises:
        MissingTable: no ``file`` in ``sweep_dir``.
        UntrustedStorage: the table does not match its signature.
    """
    table = read_signed_table(sweep_dir, file)
    if table is None:
        raise MissingTable(
            f"{sweep_dir} has no {file} (the sweep's driver writes it when the sweep ends or is "
            "interrupted; finish the sweep with --resume --storage/--name, or point at "
            "<storage>/<name> of a finished sweep)")
    return table


def read_signed_table(sweep_dir: str, file: str) -> pd.DataFrame | None:
    """A Parquet table of the sweep directory (None if absent), refused with a one-line
    :class:`~snnsearch.storage.signing.UntrustedStorage` when the sweep's signed manifest lists
    it with other bytes. Parquet is data: reading it runs no code (pyarrow 25 has no pickled
    extension types)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _storage.join(sweep_dir, file)
    data = _storage.read_bytes(path)
    if data is None:
        return None
    settings = signing.read_settings(sweep_dir, required=False) or {}
    if signing.verify_file(sweep_dir, file, data, settings) is False:
        raise signing.UntrustedStorage(
            f"{path} does not match its signature in sweep.json (changed outside this sweep's "
            f"driver); if you trust everyone who can write this storage, re-sign it with "
            f"`python -m snnsearch.sweep.state_hmac {sweep_dir}`")
    return pq.read_table(pa.BufferReader(data)).to_pandas()


def _best(history: pd.DataFrame | None, metric: str, mode: str) -> tuple[float | None, int | None]:
    if history is None or metric not in history or history[metric].dropna().empty:
        return None, None
    series = history[metric].astype(float).dropna()
    index = series.idxmax() if mode == "max" else series.idxmin()
    epoch_col = "training_iteration" if "training_iteration" in history else None
    epoch = int(history.loc[index, epoch_col]) if epoch_col else int(index) + 1
    value = float(series.loc[index])
    return (value if math.isfinite(value) else None), epoch


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _trial_id_from_path(path: str | None) -> str:
    name = str(path or "").rstrip("/").rsplit("/", 1)[-1]
    parts = name.split("_")
    return parts[2] if len(parts) > 2 else name
