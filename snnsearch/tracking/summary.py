"""Trial statuses and the end-of-sweep summary (console text, MLflow parent metrics).

Status words are shared by the MLflow child-run tag, the Parquet table and the console, so a
trial reads the same everywhere: "completed" (ran all its epochs), "stopped early" (the scheduler
cut it), "silent"/"saturated" (the silence stopper cut it; ``result["stop_reason"]``), "errored"
(raised; the message goes with it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

COMPLETED = "completed"
STOPPED = "stopped early"
ERRORED = "errored"
SILENT = "silent"  # = snnsearch.search.silence.SILENT (not imported: that module imports Ray)
SATURATED = "saturated"
INTERRUPTED = "interrupted"  # = snnsearch.sweep.interrupts.INTERRUPTED: Ctrl-C/SIGTERM, resumable
STATUSES = (COMPLETED, STOPPED, SILENT, SATURATED, ERRORED, INTERRUPTED)


def trial_status(
    *, errored: bool, epochs_run: int | None, planned_epochs: int | None,
    stop_reason: Any = None,
) -> str:
    """Classifies a finished trial.

    Args:
        errored: the trial raised (or its actor died).
        epochs_run: last ``training_iteration`` seen (None if it never reported).
        planned_epochs: the trial's ``epochs`` config; fewer epochs run means a scheduler stop.
        stop_reason: the last result's ``stop_reason`` (``"silent"``/``"saturated"`` from the
            silence stopper); a non-empty string is the status, whatever the epochs run.
    """
    if errored:
        return ERRORED
    if isinstance(stop_reason, str) and stop_reason:
        return stop_reason
    if epochs_run is None:  # ended before its first report (--budget-seconds stops them all)
        return STOPPED
    if planned_epochs is not None and (epochs_run or 0) < int(planned_epochs):
        return STOPPED
    return COMPLETED


def summarize(
    rows: Sequence[Mapping[str, Any]], *, metric: str, mode: str, gpus_per_trial: float,
    searched: Sequence[str] = (),
) -> dict[str, Any]:
    """Sweep summary from trial-table rows (see ``snnsearch.reporting.results``).

    Args:
        rows: one mapping per trial with ``trial_id``, ``status``, ``time_total_s``,
            ``epochs_run``, ``best_<metric>``, ``config/<k>`` and ``last/<k>`` keys.
        metric: objective; mode: "min" or "max".
        gpus_per_trial: GPUs each trial held, for GPU-hours.
        searched: names of the searched parameters (``best_params`` keeps only these).
    """
    counts = Counter(str(r.get("status")) for r in rows)
    total_s = sum(float(r.get("time_total_s") or 0.0) for r in rows)
    best_key = f"best_{metric}"
    scored = [r for r in rows if _finite(r.get(best_key))]
    best: Mapping[str, Any] | None = None
    if scored:
        pick = max if mode == "max" else min
        best = pick(scored, key=lambda r: float(r[best_key]))
    return {
        "metric": metric,
        "mode": mode,
        "trials": len(rows),
        "counts": {s: counts.get(s, 0) for s in STATUSES},
        "total_trial_time_s": total_s,
        "gpu_hours": total_s * gpus_per_trial / 3600.0,
        "best_trial_id": best["trial_id"] if best else None,
        "best_value": float(best[best_key]) if best else None,
        "best_config": _strip(best, "config/") if best else {},
        "best_params": {k: v for k, v in (_strip(best, "config/") if best else {}).items()
                        if k in searched},
        "best_last_metrics": _strip(best, "last/") if best else {},
        "error_groups": error_groups(rows),
    }


def error_groups(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """``[[last error line, count], ...]`` of the errored trials, most frequent first: twenty
    trials failing on one bad file are one line with ×20, not twenty tracebacks."""
    counts = Counter(str(r.get("error") or "no error message") for r in rows
                     if r.get("status") == ERRORED)
    return [[line, n] for line, n in counts.most_common()]


def format_summary(summary: Mapping[str, Any]) -> str:
    """Human-readable multi-line summary for the console and the MLflow parent run."""
    # Silent/saturated only when they happened (sweeps without silence pruning never have them).
    counts = ", ".join(f"{n} {s}" for s, n in summary["counts"].items()
                       if n or s not in (SILENT, SATURATED, INTERRUPTED))
    lines = [
        f"Sweep summary: {summary['trials']} trials ({counts})",
        (f"  total trial time {summary['total_trial_time_s']:.1f} s, "
         f"GPU-hours {summary['gpu_hours']:.3f}"),
    ]
    for line, n in summary.get("error_groups") or []:
        lines.append(f"  errored {n}x: {line}")
    if summary["best_trial_id"] is None:
        lines.append(f"  no trial reported {summary['metric']}")
        return "\n".join(lines)
    lines.append(
        f"  best trial {summary['best_trial_id']}: {summary['metric']} = "
        f"{summary['best_value']:.4f} ({summary['mode']})"
    )
    params = summary.get("best_params") or summary["best_config"]
    config = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(params.items()))
    lines.append(f"  params: {config}")
    shown = {k: v for k, v in summary["best_last_metrics"].items() if "/" not in k}
    metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(shown.items()))
    lines.append(f"  last metrics: {metrics}")
    return "\n".join(lines)


def error_headline(error: str | BaseException | None, limit: int = 500) -> str | None:
    """The most telling line of an error/traceback: the last ``SomeError: message`` line."""
    if error is None:
        return None
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) and " " not in head:
            return line[:limit]
    return (lines[-1] if lines else type(error).__name__)[:limit]


def _strip(row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if key.startswith(prefix) and value is not None:
            if isinstance(value, float) and math.isnan(value):
                continue
            out[key[len(prefix):]] = value.item() if hasattr(value, "item") else value
    return out


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
