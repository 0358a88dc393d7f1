"""What the driver does with a finished sweep's results besides the table: the per-epoch history,
the plots and the HTML/Markdown report in the sweep directory, the same files as artifacts of the
MLflow parent run (under ``report/``), and a Markdown description for that run.

Nothing here may cost the sweep its results: every failure is logged and reported in one line,
and ``python -m snnsearch.report <dir>`` rebuilds the report from the files on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snnsearch.storage import sweepdir as _storage

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from ray.tune import ResultGrid

    from snnsearch.reporting.sweep_report import SweepReport

log = logging.getLogger(__name__)
DESCRIPTION_LIMIT = 7500  # MLflow caps a tag (the run description) at 8000 characters


def save_history(results: ResultGrid, rows: Sequence[dict[str, Any]], sweep_dir: str) -> None:
    """Writes ``history.parquet`` (every trial's every epoch) beside ``trials.parquet``."""
    from snnsearch.reporting.history import history_rows, write_history

    try:
        write_history(history_rows(results, [str(r["trial_id"]) for r in rows]), sweep_dir)
    except Exception as err:  # noqa: BLE001 - see module docstring
        log.warning("history.parquet not written: %s: %s", type(err).__name__, err)


def build_report(sweep_dir: str, settings: dict[str, Any], rows: Sequence[dict[str, Any]]
                 ) -> tuple[SweepReport | None, str]:
    """Writes plots and the report; returns ``(report or None, console line)``."""
    from snnsearch.reporting.results import to_arrow
    from snnsearch.reporting.sweep_report import report_sweep_dir

    try:
        table = to_arrow(list(rows)).to_pandas()
        report = report_sweep_dir(sweep_dir, settings, table)
    except Exception as err:  # noqa: BLE001 - see module docstring
        log.warning("sweep report failed: %s: %s", type(err).__name__, err)
        return None, (f"  report failed ({type(err).__name__}: {str(err)[:200]}); rebuild it "
                      f"with: python -m snnsearch.report {sweep_dir}")
    return report, f"  report: {report.html_path}"


def description(report: SweepReport | None, text: str) -> str:
    """The parent run's Markdown description: the report summary, cut at a line boundary to fit
    MLflow's tag limit (the whole summary is the ``report/report.md`` artifact)."""
    if report is None:
        return f"```\n{text}\n```"
    md = report.markdown
    if len(md) <= DESCRIPTION_LIMIT:
        return md
    cut = md.rfind("\n", 0, DESCRIPTION_LIMIT)
    return md[:cut] + "\n\n… (cut to fit; the full summary is the artifact report/report.md)\n"


def log_report(report: SweepReport | None, sweep_dir: str, *, client: MlflowClient,
               run_id: str) -> None:
    """Uploads report.html, report.md and plots/ to the parent run under ``report/``."""
    if report is None or _storage.is_uri(sweep_dir):
        return
    try:
        for path in (report.html_path, report.md_path):
            client.log_artifact(run_id, path, "report")
        plots = Path(sweep_dir) / "plots"
        if plots.is_dir():
            client.log_artifacts(run_id, str(plots), "report/plots")
    except Exception as err:  # noqa: BLE001 - see module docstring
        log.warning("report not logged to MLflow: %s: %s", type(err).__name__, err)
