"""Pareto report of a sweep: the non-dominated trials as a table and an accuracy-energy plot.

Input is the trial table of :mod:`snnsearch.reporting.results` (one row per trial, columns
``status``, ``config/<key>``, ``last/<metric>``). Only trials that ran their full budget
(``status == "completed"``) and were not stopped as silent/saturated (``last/stop_reason``) are
candidates by default: a truncated or silent trial's numbers do not describe its configuration,
and a silent net's near-zero energy would otherwise always sit on the front.

Outputs, written beside ``trials.parquet``: ``pareto.parquet``, ``pareto.csv`` and
``pareto.png`` (first objective on y, second on x; front points coloured by ``T`` and ``D``);
with hard constraints (``--constraint energy_mj<=0.5``) the front holds feasible trials only
and the infeasible ones are drawn greyed out (light crosses);
:func:`log_pareto_report` uploads them to the sweep's MLflow parent run under ``pareto/``.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from snnsearch.search.constraints import Constraint, feasible_mask, parse_constraints
from snnsearch.search.pareto import (
    Objective,
    as_minimization,
    crowding_distance,
    hypervolume,
    pareto_mask,
    parse_objectives,
)
from snnsearch.storage import sweepdir as _storage

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

PARQUET_FILE, CSV_FILE, PNG_FILE = "pareto.parquet", "pareto.csv", "pareto.png"

__all__ = [
    "ParetoReport", "feasible_rows", "log_pareto_report", "pareto_front", "write_pareto_report",
]


@dataclass(frozen=True)
class ParetoReport:
    """What :func:`write_pareto_report` produced.

    Args:
        front: the non-dominated rows, best first objective first, with one plain column per
            objective and ``crowding_distance``.
        objectives: ``(metric, mode)`` pairs used.
        candidates: number of trials that were eligible for the front.
        hypervolume: volume dominated by the front w.r.t. ``reference`` (None without one).
        reference: reference point in raw metric units, in objective order.
        paths: ``{"parquet"|"csv"|"png": path or URI}``.
        constraints: the hard constraints applied (``"energy_mj<=0.5"``).
        infeasible: eligible trials that broke a constraint (never on the front).
    """

    front: pd.DataFrame
    objectives: list[Objective]
    candidates: int
    hypervolume: float | None = None
    reference: tuple[float, ...] | None = None
    paths: dict[str, str] = field(default_factory=dict)
    constraints: tuple[str, ...] = ()
    infeasible: int = 0


def _column(df: pd.DataFrame, name: str, prefix: str) -> str:
    for col in (f"{prefix}{name}", name):
        if col in df.columns:
            return col
    raise ValueError(
        f"trial table has no column {prefix + name!r} or {name!r}: report {name!r} from the "
        "trainable or choose another objective"
    )


def _eligible(df: pd.DataFrame, statuses: Sequence[str] | None, prefix: str) -> pd.DataFrame:
    keep = np.ones(len(df), dtype=bool)
    if statuses is not None and "status" in df.columns:
        keep &= df["status"].isin(list(statuses)).to_numpy()
    for col in (f"{prefix}stop_reason", "stop_reason"):
        if col in df.columns:
            reason = df[col]
            keep &= (reason.isna() | (reason.astype(str) == "")).to_numpy()
    return df.loc[keep]


def pareto_front(
    df: pd.DataFrame,
    objectives: Sequence[Sequence[str]] | str,
    *,
    value_prefix: str = "last/",
    statuses: Sequence[str] | None = ("completed",),
    constraints: Sequence[str | Constraint] = (),
) -> tuple[pd.DataFrame, int]:
    """Non-dominated rows of a trial table.

    Args:
        df: trial table (one row per trial).
        objectives: ``"val_acc:max,energy_mj:min"`` or ``(metric, mode)`` pairs.
        value_prefix: column prefix holding the final metrics (``last/``); the bare metric
            name is used if the prefixed column is absent.
        statuses: ``status`` values allowed on the front; None keeps every row.
        constraints: hard constraints; rows breaking one are candidates but never on the
            front (see :func:`feasible_rows`).

    Returns:
        ``(front, n_candidates)``; ``front`` has plain objective columns and
        ``crowding_distance`` and is sorted best-first on the first objective.
    """
    objs = parse_objectives(objectives)
    cols = [_column(df, name, value_prefix) for name, _ in objs]
    cand = _eligible(df, statuses, value_prefix).copy()
    for (name, _), col in zip(objs, cols):
        cand[name] = cand[col].astype(float)
    cand = cand[np.isfinite(cand[[n for n, _ in objs]].to_numpy()).all(axis=1)]
    n_cand = len(cand)
    cand = cand.loc[feasible_rows(cand, constraints, value_prefix)]
    if cand.empty:
        return cand.assign(crowding_distance=[]), n_cand
    pts = as_minimization(cand[[n for n, _ in objs]].to_numpy(), [m for _, m in objs])
    mask = pareto_mask(pts)
    front = cand.loc[mask].copy()
    front["crowding_distance"] = crowding_distance(pts[mask])
    first, mode = objs[0]
    front = front.sort_values(first, ascending=(mode == "min"), kind="stable")
    return front.reset_index(drop=True), n_cand


def feasible_rows(
    df: pd.DataFrame, constraints: Sequence[str | Constraint], value_prefix: str = "last/"
) -> np.ndarray:
    """Boolean mask of the rows meeting every constraint, read from the final-metric columns
    (``last/<metric>`` or ``<metric>``); a missing or NaN value breaks the constraint."""
    cons = parse_constraints(constraints)
    if not cons:
        return np.ones(len(df), dtype=bool)
    cols = {c.metric: _column(df, c.metric, value_prefix) for c in cons}
    rows = [{m: row[col] for m, col in cols.items()} for _, row in df.iterrows()]
    return feasible_mask(rows, cons)


def _label(row: Any, colour_by: Sequence[str]) -> str:
    parts = []
    for key in colour_by:
        value = row.get(f"config/{key}", row.get(key))
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        parts.append(f"{key}=-" if missing else f"{key}={value:g}" if isinstance(
            value, (int, float)) else f"{key}={value}")
    return ", ".join(parts) if parts else "front"


def plot_front(
    candidates: pd.DataFrame,
    front: pd.DataFrame,
    objectives: Sequence[Objective],
    *,
    colour_by: Sequence[str] = ("T", "D"),
    infeasible: pd.DataFrame | None = None,
) -> bytes:
    """PNG bytes: all candidates in grey, the front coloured by ``colour_by`` and joined;
    ``infeasible`` candidates (broke a hard constraint) as light grey crosses.

    Uses a bare ``Figure`` (no pyplot) so no global matplotlib state is touched.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    (y_name, y_mode), (x_name, x_mode) = objectives[0], objectives[1]
    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(candidates[x_name], candidates[y_name], s=14, c="0.75", label="all trials")
    if infeasible is not None and len(infeasible):
        ax.scatter(infeasible[x_name], infeasible[y_name], s=16, c="0.85", marker="x",
                   label="infeasible (constraint)")
    line = front.sort_values(x_name)
    ax.plot(line[x_name], line[y_name], c="0.3", lw=0.8, drawstyle="steps-post", zorder=1)
    labels = [_label(r, colour_by) for _, r in front.iterrows()]
    cmap = matplotlib.colormaps["tab10"]
    for i, lab in enumerate(dict.fromkeys(labels)):
        rows = front[[lab == other for other in labels]]
        ax.scatter(rows[x_name], rows[y_name], s=42, color=cmap(i % 10), label=lab, zorder=2,
                   edgecolors="k", linewidths=0.5)
    xs = candidates[x_name].to_numpy(dtype=float)
    if xs.size and xs.min() > 0 and xs.max() / xs.min() > 20:
        ax.set_xscale("log")
    arrow = {"max": "higher is better", "min": "lower is better"}
    ax.set_xlabel(f"{x_name} ({arrow[x_mode]})")
    ax.set_ylabel(f"{y_name} ({arrow[y_mode]})")
    ax.set_title(f"Pareto front: {len(front)} of {len(candidates)} trials")
    ax.legend(fontsize=7, title=", ".join(colour_by) or None, title_fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _write_bytes(path: str, data: bytes) -> None:
    _storage.write_bytes(path, data)  # atomic: a crash leaves the previous file whole


def write_pareto_report(
    df: pd.DataFrame,
    objectives: Sequence[Sequence[str]] | str,
    out_dir: str,
    *,
    reference: Sequence[float] | None = None,
    colour_by: Sequence[str] = ("T", "D"),
    value_prefix: str = "last/",
    statuses: Sequence[str] | None = ("completed",),
    constraints: Sequence[str | Constraint] = (),
) -> ParetoReport:
    """Writes ``pareto.parquet``, ``pareto.csv`` and (for 2+ objectives) ``pareto.png``.

    Args:
        df: trial table (``snnsearch.reporting.results.load_table``).
        objectives: as for :func:`pareto_front`.
        out_dir: the sweep directory (local path or pyarrow-fs URI) holding ``trials.parquet``.
        reference: raw-unit reference point for the hypervolume, e.g. ``(0.0, 1.0)`` for
            ``val_acc:max,energy_mj:min``; None skips the hypervolume.
        colour_by: config keys that colour the front points (``config/<key>`` or ``<key>``).
        value_prefix: see :func:`pareto_front`.
        statuses: see :func:`pareto_front`.
        constraints: see :func:`pareto_front` (feasible front, infeasible points greyed).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    objs = parse_objectives(objectives)
    if reference is not None and len(reference) != len(objs):
        raise ValueError(f"reference {tuple(reference)} needs one value per objective {objs}")
    cons = parse_constraints(constraints)
    front, n_cand = pareto_front(df, objs, value_prefix=value_prefix, statuses=statuses,
                                 constraints=cons)
    hv = None
    if reference is not None:
        pts = front[[n for n, _ in objs]].to_numpy(dtype=float).reshape(-1, len(objs))
        hv = hypervolume(pts, list(reference), modes=[m for _, m in objs])
    paths = {
        "parquet": _storage.join(out_dir, PARQUET_FILE),
        "csv": _storage.join(out_dir, CSV_FILE),
    }
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(front, preserve_index=False), buf)
    _write_bytes(paths["parquet"], buf.getvalue())
    _write_bytes(paths["csv"], front.to_csv(index=False).encode())
    if len(objs) >= 2:
        cand = _eligible(df, statuses, value_prefix).copy()
        for name, _ in objs[:2]:
            cand[name] = cand[_column(df, name, value_prefix)].astype(float)
        ok = feasible_rows(cand, cons, value_prefix)
        paths["png"] = _storage.join(out_dir, PNG_FILE)
        _write_bytes(paths["png"], plot_front(cand.loc[ok], front, objs, colour_by=colour_by,
                                              infeasible=cand.loc[~ok]))
    eligible = _eligible(df, statuses, value_prefix)
    return ParetoReport(
        front=front, objectives=objs, candidates=n_cand, hypervolume=hv,
        reference=tuple(float(r) for r in reference) if reference is not None else None,
        paths=paths, constraints=tuple(str(c) for c in cons),
        infeasible=int((~feasible_rows(eligible, cons, value_prefix)).sum()),
    )


def log_pareto_report(report: ParetoReport, *, client: MlflowClient, run_id: str) -> None:
    """Uploads the report files to ``run_id`` (the sweep's parent run) under ``pareto/``.

    Also logs ``pareto_size`` and, when a reference was given, ``pareto_hypervolume`` plus the
    reference as the tag ``pareto.reference`` (a hypervolume means nothing without it).
    """
    with tempfile.TemporaryDirectory() as tmp:
        for path in report.paths.values():
            local = path
            if _storage.is_uri(path):
                local = os.path.join(tmp, path.rstrip("/").rsplit("/", 1)[-1])
                fs, fs_path = _storage.resolve(path)
                with fs.open_input_stream(fs_path) as src, open(local, "wb") as dst:
                    dst.write(src.readall())
            client.log_artifact(run_id, local, "pareto")
    client.log_metric(run_id, "pareto_size", float(len(report.front)))
    if report.hypervolume is not None:
        client.log_metric(run_id, "pareto_hypervolume", float(report.hypervolume))
        client.set_tag(run_id, "pareto.reference", repr(report.reference))
