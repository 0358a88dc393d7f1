"""Confirmation over seeds (``--repeats k``): the top configurations of a sweep re-run with k
seeds, summarised as mean ± std per configuration.

The rows are the trial-table rows of the repeat runs (``repeats.parquet`` in the sweep
directory) with a ``config_rank`` (1 = the search's best) and the trial ``seed``. A configuration's
validation metric is averaged over its seeds; its test metric, measured once at the end of each
repeat, is averaged the same way and never used to choose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from snnsearch.reporting.page import Section, Table
from snnsearch.reporting.params import ParamInfo, shown
from snnsearch.storage import sweepdir as _storage

if TYPE_CHECKING:
    import pandas as pd

REPEATS_FILE = "repeats.parquet"


def load_repeats(sweep_dir: str) -> pd.DataFrame | None:
    """``repeats.parquet`` of a sweep directory, or None."""
    import pyarrow.parquet as pq

    path = _storage.join(sweep_dir, REPEATS_FILE)
    if not _storage.exists(path):
        return None
    fs, fs_path = _storage.resolve(path)
    return pq.read_table(fs_path, filesystem=fs).to_pandas()


def aggregate(repeats: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """One row per configuration: ``config_rank``, ``seeds``, ``<m>_mean``/``<m>_std`` for the
    validation metric, every ``last/test_*`` metric and ``energy_mj``, best mean first."""
    import pandas as pd

    value_cols = {metric: f"best_{metric}" if f"best_{metric}" in repeats else f"last/{metric}"}
    value_cols |= {c.removeprefix("last/"): c for c in repeats.columns
                   if c.startswith("last/test_") or c == "last/energy_mj"}
    out = []
    for rank, group in repeats.groupby("config_rank", sort=True):
        row: dict[str, Any] = {"config_rank": int(rank), "seeds": len(group),
                               "completed": int((group["status"] == "completed").sum())}
        for name, col in value_cols.items():
            values = group[col].astype(float) if col in group else pd.Series(dtype=float)
            row[f"{name}_mean"] = float(values.mean()) if values.notna().any() else None
            row[f"{name}_std"] = float(values.std(ddof=1)) if values.notna().sum() > 1 else None
        out.append({**row, **{k: v for k, v in group.iloc[0].items() if k.startswith("config/")
                              and k != "config/seed"}})
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    return frame.sort_values(f"{metric}_mean", ascending=mode == "min", kind="stable")


def repeats_section(repeats: pd.DataFrame, metric: str, mode: str,
                    params: Sequence[ParamInfo]) -> Section:
    """The report section: mean ± std over seeds per re-run configuration."""
    agg = aggregate(repeats, metric, mode)
    sec = Section("repeats", "Confirmation over seeds")
    tests = sorted({c.removesuffix("_mean") for c in agg.columns
                    if c.startswith("test_") and c.endswith("_mean")})
    cols = ["search rank", "seeds", f"{metric} mean ± std (val)",
            *[f"{t} mean ± std (once per seed)" for t in tests], "energy_mj mean",
            *[p.name for p in params[:7]]]
    rows = [[r["config_rank"], r["seeds"], _pm(r, metric), *[_pm(r, t) for t in tests],
             r.get("energy_mj_mean"), *[shown(p, r.get(p.column)) for p in params[:7]]]
            for _, r in agg.iterrows()]
    sec.text(f"The top {len(agg)} configurations of the search re-run with "
             f"{int(agg['seeds'].max()) if len(agg) else 0} seeds each, under the same MLflow "
             "parent run; ranked by the mean validation metric; the test metric is measured "
             "once per seed at the end of training and reported, never used to choose.")
    return sec.table(Table(cols, rows))


def _pm(row: Any, name: str) -> str:
    mean, std = row.get(f"{name}_mean"), row.get(f"{name}_std")
    if mean is None or math.isnan(mean):
        return ""
    return f"{mean:.4g} ± {std:.2g}" if std is not None and not math.isnan(std) else f"{mean:.4g}"
