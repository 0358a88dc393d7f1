"""A grid sweep side by side with the report it reproduces (``report --compare``).

For every cell of a grid space (``search_spaces/report/*.yaml``) and every metric of its
``report:`` section: the report's number, ours as mean ± sample std over the seeds that finished
all their epochs, the difference, our training time per trial and our energy per image next to
the report's, under the energy protocol the space states. Written as Markdown into the sweep
directory (``compare.md``) and onto the sweep's MLflow parent run (``compare.md`` plus one
metric per cell and metric, ``compare/<cell>/<metric>_mean``).

Input is the recorded trial table (``trials.parquet``: ``config/cell``, ``status``,
``time_total_s`` and the ``last/...`` columns the report section names), so a comparison can be
rebuilt at any time from a finished or interrupted sweep.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snnsearch.constants import ENERGY_MJ, ENERGY_MODEL_PREFIX
from snnsearch.spaces.grid import CELL_KEY, SEED_KEY, GridCell, MetricSpec

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from snnsearch.reporting.page import Section
    from snnsearch.spaces.space import SearchSpace

COMPARE_FILE = "compare.md"
ENERGY_COLUMN = f"last/{ENERGY_MJ}"
# The same counts priced with memory traffic (snnsearch.energy's compute45+memory model): shown
# beside the report's compute-only formula when the trials logged it.
MEMORY_ENERGY_COLUMN = f"last/{ENERGY_MODEL_PREFIX}compute45_memory_mj"
COUNTED_STATUS = "completed"  # a trial that ran all its planned epochs


@dataclasses.dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (None below two values) and count of some values."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not vals:
            return cls(None, None, 0)
        mean = statistics.fmean(vals)
        if len(vals) < 2:
            return cls(mean, None, 1)
        # statistics.stdev sums exactly: equal values give 0, not float noise (8.5e-18).
        return cls(mean, statistics.stdev(vals), len(vals))


@dataclasses.dataclass(frozen=True)
class MetricRow:
    """One (cell, metric) line: the report's value, ours, and ours − report (None if unknown)."""

    metric: MetricSpec
    expected: float | None
    ours: Stat

    @property
    def diff(self) -> float | None:
        if self.expected is None or self.ours.mean is None:
            return None
        return self.ours.mean - self.expected


@dataclasses.dataclass(frozen=True)
class CellComparison:
    """Everything compared for one cell.

    Args:
        cell: the grid cell.
        trials: trials of this cell in the table (any status).
        counted: trials that finished all their epochs (the ones averaged).
        seeds: their seeds.
        rows: one per report metric.
        time_s: our training time per trial (Ray's ``time_total_s``).
        energy_mj: our energy per image and inference (the report's compute-only formula).
        memory_mj: the same with memory traffic (compute45+memory), if logged.
    """

    cell: GridCell
    trials: int
    counted: int
    seeds: tuple[int, ...]
    rows: tuple[MetricRow, ...]
    time_s: Stat
    energy_mj: Stat
    memory_mj: Stat = Stat(None, None, 0)


def compare(table: pd.DataFrame, space: SearchSpace) -> list[CellComparison]:
    """Groups the trial table by ``config/cell`` and sets each cell against its ``expected``.

    Raises:
        ValueError: the space is not a grid with a ``report`` section, or the table has no
            ``config/cell`` column (it is not a grid sweep).
    """
    if space.grid is None or space.report is None:
        raise ValueError(f"{space.source}: not a report grid (needs 'grid' and 'report' sections)")
    cell_col = f"config/{CELL_KEY}"
    if cell_col not in table:
        raise ValueError("the trial table has no config/cell column: not a grid sweep")
    out = []
    for cell in space.grid.cells:
        mine = table[table[cell_col] == cell.name]
        done = mine[mine["status"] == COUNTED_STATUS] if "status" in mine else mine
        rows = tuple(
            MetricRow(metric=m, expected=cell.expected.get(m.name),
                      ours=Stat.of(_column(done, m.column)))
            for m in space.report.metrics
        )
        seed_col = f"config/{SEED_KEY}"
        seeds = tuple(sorted(int(s) for s in done[seed_col])) if seed_col in done else ()
        out.append(CellComparison(
            cell=cell, trials=len(mine), counted=len(done), seeds=seeds, rows=rows,
            time_s=Stat.of(_column(done, "time_total_s")),
            energy_mj=Stat.of(_column(done, ENERGY_COLUMN)),
            memory_mj=Stat.of(_column(done, MEMORY_ENERGY_COLUMN)),
        ))
    return out


def _column(frame: pd.DataFrame, column: str) -> list[float]:
    if column not in frame:
        return []
    return [float(v) for v in frame[column].dropna()]


def to_markdown(cells: Sequence[CellComparison], space: SearchSpace, *, sweep: str = "") -> str:
    """The comparison as Markdown: a metrics table, a cost table, the energy protocol and notes."""
    report = space.report
    assert report is not None
    grid_seeds = ", ".join(map(str, space.grid.seeds)) if space.grid else ""
    counted = sum(c.counted for c in cells)
    lines = [f"## {report.title}", ""]
    lines.append(f"Space `{space.source}`" + (f", sweep `{sweep}`" if sweep else "")
                 + f": {counted} of {sum(c.trials for c in cells)} trials finished all epochs "
                 f"(grid seeds {grid_seeds}). Ours = mean ± sample std over those seeds.")
    lines += ["", "| cell | metric | report | ours (mean ± std) | n | ours − report |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    for c in cells:
        for row in c.rows:
            m = row.metric
            lines.append(
                f"| {c.cell.label} | {m.label or m.name} | {_fmt(row.expected, m)} | "
                f"{_fmt_stat(row.ours, m)} | {row.ours.n} | {_fmt_diff(row.diff, m)} |"
            )
    lines += ["", ("| cell | train time per trial (ours) | train time (report) | "
                   "energy mJ/image (ours) | ours with memory | energy mJ/image (report) |"),
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for c in cells:
        time_h = c.cell.expected.get("train_time_h")
        energy = c.cell.expected.get("energy_mj")
        lines.append(
            f"| {c.cell.label} | {_fmt_time(c.time_s.mean)} | "
            f"{'—' if time_h is None else f'{time_h:g} h'} | {_fmt_energy(c.energy_mj)} | "
            f"{_fmt_energy(c.memory_mj)} | "
            f"{'—' if energy is None else f'{energy:g}'} |"
        )
    if report.energy:
        lines += ["", (f"Energy protocol: {report.energy}. \"Ours with memory\" prices the "
                       "same counts with one SRAM weight read per synaptic operation and the "
                       "neuron-state traffic (model compute45+memory, docs/energy.md).")]
    notes = [*report.notes, *(f"`{c.cell.name}`: {c.cell.note}" for c in cells if c.cell.note)]
    notes += [f"`{c.cell.name}`: no finished trial yet ({c.trials} in the table)"
              for c in cells if c.counted == 0]
    if notes:
        lines += ["", "Notes:", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, metric: MetricSpec) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.2f} %" if metric.percent else f"{value:.3f}"


def _fmt_stat(stat: Stat, metric: MetricSpec) -> str:
    if stat.mean is None:
        return "—"
    if stat.std is None:
        return _fmt(stat.mean, metric)
    if metric.percent:
        return f"{100 * stat.mean:.2f} ± {100 * stat.std:.2f} %"
    return f"{stat.mean:.3f} ± {stat.std:.3f}"


def _fmt_diff(diff: float | None, metric: MetricSpec) -> str:
    if diff is None:
        return "—"
    return f"{100 * diff:+.2f} pp" if metric.percent else f"{diff:+.3f}"


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _fmt_energy(stat: Stat) -> str:
    if stat.mean is None:
        return "—"
    return f"{stat.mean:.4g}" + ("" if stat.std is None else f" ± {stat.std:.2g}")


def compare_sweep(table: pd.DataFrame, space: SearchSpace, sweep_dir: str, *,
                  client: MlflowClient | None = None, run_id: str | None = None) -> str:
    """Computes the comparison, writes ``compare.md`` into the sweep directory and, given a
    client and the parent run id, logs it there with ``compare/<cell>/<metric>_mean`` metrics.

    Returns:
        The Markdown text.
    """
    from snnsearch.storage import sweepdir as _storage

    cells = compare(table, space)
    text = to_markdown(cells, space, sweep=sweep_dir.rstrip("/").rsplit("/", 1)[-1])
    _storage.write_text(_storage.join(sweep_dir, COMPARE_FILE), text)
    if client is not None and run_id is not None:
        client.log_text(run_id, text, COMPARE_FILE)
        for c in cells:
            for row in c.rows:
                if row.ours.mean is not None:
                    client.log_metric(run_id, f"compare/{c.cell.name}/{row.metric.name}_mean",
                                      row.ours.mean)
    return text


def compare_rows(rows: Sequence[dict[str, Any]], space: SearchSpace, sweep_dir: str, *,
                 client: MlflowClient, run_id: str) -> str:
    """:func:`compare_sweep` on a finished sweep's rows, run by the sweep itself. Like the Pareto
    report, a failure is logged and returned as a line, never raised: the trials and their table
    are already safe and ``report --compare`` rebuilds the comparison."""
    import logging

    from snnsearch.reporting.results import to_arrow

    try:
        return compare_sweep(to_arrow(rows).to_pandas(), space, sweep_dir, client=client,
                             run_id=run_id)
    except Exception as err:  # noqa: BLE001 - see docstring
        logging.getLogger(__name__).warning("report comparison failed: %s: %s",
                                            type(err).__name__, err)
        return f"  report comparison failed: {type(err).__name__}: {str(err)[:200]}"


def space_of_sweep(sweep_dir: str, space_path: str | None = None) -> SearchSpace:
    """The grid space a sweep ran (``space_path`` from its ``sweep.json``, smoke seeds applied).

    Raises:
        ValueError: no ``sweep.json`` and no ``space_path``.
    """
    settings_file = Path(sweep_dir) / "sweep.json"
    saved: dict[str, Any] = (
        json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    )
    return _space_of_settings(saved, space_path, sweep_dir)


def _space_of_settings(saved: dict[str, Any], space_path: str | None, sweep_dir: str
                       ) -> SearchSpace:
    from snnsearch.spaces.space import load_space

    path = space_path or saved.get("space_path")
    if not path:
        raise ValueError(f"{sweep_dir}: no sweep.json naming the space; pass --space")
    if not Path(path).is_absolute() and not Path(path).is_file():
        # sweep.json keeps the path as typed, relative to where the sweep was started.
        repo_relative = Path(__file__).resolve().parents[2] / path
        path = str(repo_relative) if repo_relative.is_file() else path
    space = load_space(path)
    return space.for_smoke() if saved.get("smoke") else space


def report_section(table: pd.DataFrame, settings: dict[str, Any]) -> Section | None:
    """The comparison as a section of the HTML sweep report (``reporting/sweep_report.py``);
    None for a sweep that is not a report grid or whose space file cannot be read."""
    from snnsearch.reporting.page import Section, Table
    from snnsearch.spaces.space import SpaceError

    if f"config/{CELL_KEY}" not in table:
        return None
    try:
        space = _space_of_settings(settings, None, str(settings.get("name", "")))
        cells = compare(table, space)
    except (SpaceError, ValueError, OSError):
        return None
    assert space.report is not None
    metrics = Table(["cell", "metric", "report", "ours (mean ± std)", "n", "ours − report"], [
        [c.cell.label, r.metric.label or r.metric.name, _fmt(r.expected, r.metric),
         _fmt_stat(r.ours, r.metric), r.ours.n, _fmt_diff(r.diff, r.metric)]
        for c in cells for r in c.rows])
    cost = Table(["cell", "train time per trial (ours)", "train time (report)",
                  "energy mJ/image (ours)", "ours with memory", "energy mJ/image (report)"], [
        [c.cell.label, _fmt_time(c.time_s.mean), c.cell.expected.get("train_time_h"),
         _fmt_energy(c.energy_mj), _fmt_energy(c.memory_mj), c.cell.expected.get("energy_mj")]
        for c in cells])
    sec = Section("compare", space.report.title).table(metrics).table(cost)
    if space.report.energy:
        sec.text(f"<span class=note>Energy protocol: {html.escape(space.report.energy)}</span>")
    return sec


def compare_main(table: pd.DataFrame, sweep_dir: str, *, space_path: str | None = None) -> int:
    """``python -m snnsearch.report <sweep dir> --compare``: prints the comparison, writes
    ``compare.md`` and logs it to the sweep's MLflow parent run. Returns the exit code."""
    import logging
    import sys

    from snnsearch.spaces.space import SpaceError
    from snnsearch.tracking import mlflow_logging as M

    try:
        space = space_of_sweep(sweep_dir, space_path)
        compare(table, space)  # validates before anything is written
    except (SpaceError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    client = run_id = None
    settings_file = Path(sweep_dir) / "sweep.json"
    saved = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    run_id = M.read_parent_id(sweep_dir)
    if run_id and saved.get("mlflow_uri"):
        try:
            client = M.make_client(saved["mlflow_uri"])
            client.get_run(run_id)
        except Exception as err:  # noqa: BLE001 - the file and the printout do not need MLflow
            logging.getLogger(__name__).warning(
                "MLflow parent run %s not reachable (%s); compare.md is written only", run_id,
                type(err).__name__)
            client = None
    text = compare_sweep(table, space, sweep_dir, client=client, run_id=run_id)
    print(text)
    print(f"written: {Path(sweep_dir) / COMPARE_FILE}"
          + (f"; logged to MLflow parent run {run_id}" if client is not None else ""))
    return 0
