"""Fixed grids of named configurations (cells), each run with several seeds.

A report is reproduced by running *its* configurations, not by searching: a space file with a
``grid:`` section (instead of ``space:``) lists the cells, the seeds, and the numbers the report
gives for each cell (``expected``), so the comparison reads both from one file::

    grid:
      seeds: [0, 1, 2]
      cells:
        - name: fc_single_tau2          # config key ``cell`` of every trial of this cell
          label: "FC-SNN single layer, LIF τ=2"
          config: {model: fc, hidden_layers: 0, tau: 2.0}
          expected: {test_acc: 0.869}   # the report's numbers, in the trainable's metric units
    report:                              # how snnsearch.reporting.compare lays the table out
      title: "Table 1: MNIST"
      metrics: {test_acc: {column: last/selected_test_acc, percent: true}}
      notes: ["..."]

The grid runs through the normal engine: Optuna's ``GridSampler`` over ``{cell, seed}`` (every
pair exactly once, trial number *i* takes grid point *i*) and a define-by-run function that
returns the cell's values as constants. The cell name travels in the trial config (so the trial
table, MLflow and the comparison group by it) and is removed before the trainable sees the config
(``strip_cell``), because the trainables' config dataclasses reject unknown keys.

Precedence inside a trial: the space's ``fixed`` < the cell's ``config`` < ``--smoke`` and CLI
overrides (so ``--smoke`` can shrink every cell). A cell may not repeat a ``fixed`` key; a cell's
``epochs`` is capped by ``--max-epochs`` (``tune.max_epochs``) rather than replaced by it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

CELL_KEY = "cell"
SEED_KEY = "seed"
CELL_KEYS = frozenset({"name", "label", "config", "expected", "note"})
GRID_KEYS = frozenset({"seeds", "cells"})
REPORT_KEYS = frozenset({"title", "metrics", "energy", "notes"})
METRIC_KEYS = frozenset({"column", "percent", "mode", "label"})
# Expected values that are not trial metrics: training time and energy (compare.py shows them
# in their own columns, next to ours).
EXTRA_EXPECTED = frozenset({"train_time_h", "energy_mj"})
GRID_VALUE_TYPES = (str, int, float, bool)


@dataclasses.dataclass(frozen=True)
class GridCell:
    """One configuration of a report table.

    Args:
        name: identifier (``cell`` config key); letters, digits, ``_`` and ``-``.
        label: the row label shown in comparisons.
        config: trainable config values of this cell (over the space's ``fixed``).
        expected: the report's numbers for this cell, keyed by metric name.
        note: free text shown under the comparison (e.g. what was reduced and why).
    """

    name: str
    label: str
    config: Mapping[str, Any]
    expected: Mapping[str, float]
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Grid:
    """The cells and seeds of a grid space; ``len(grid)`` trials in total."""

    seeds: tuple[int, ...]
    cells: tuple[GridCell, ...]

    def __len__(self) -> int:
        return len(self.seeds) * len(self.cells)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every config key some cell sets (for the trainable-key check), plus cell and seed."""
        return (CELL_KEY, SEED_KEY, *dict.fromkeys(k for c in self.cells for k in c.config))

    def cell(self, name: str) -> GridCell:
        """The cell called ``name`` (KeyError if none)."""
        for cell in self.cells:
            if cell.name == name:
                return cell
        raise KeyError(name)

    def sampler_space(self) -> dict[str, list[Any]]:
        """``GridSampler``'s ``search_space``: every (cell, seed) pair, JSON-ready for sweep.json."""
        return {CELL_KEY: [c.name for c in self.cells], SEED_KEY: list(self.seeds)}

    def with_seeds(self, seeds: Sequence[int]) -> Grid:
        """The same cells with other seeds (``smoke.seeds``)."""
        return dataclasses.replace(self, seeds=tuple(int(s) for s in seeds))

    def expand(self, fixed: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every trial's config (cell-major), as the engine will run it over ``fixed``.

        Args:
            fixed: the effective fixed values (the space's, smoke and CLI overrides).
        """
        return [
            {**fixed, **cell_values(cell, fixed), CELL_KEY: cell.name, SEED_KEY: seed}
            for cell in self.cells
            for seed in self.seeds
        ]

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (round-trips through ``parse_grid``)."""
        return {
            "seeds": list(self.seeds),
            "cells": [
                {"name": c.name, "label": c.label, "config": dict(c.config),
                 "expected": dict(c.expected), **({"note": c.note} if c.note else {})}
                for c in self.cells
            ],
        }


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One compared metric.

    Args:
        name: the metric name used in cells' ``expected``.
        column: the trial-table column holding our value (e.g. ``last/selected_test_acc``).
        percent: show value ×100 with a ``%`` (accuracies are stored as fractions).
        mode: "max" or "min": which direction is better (sign of the difference's meaning).
        label: column header (default: the name).
    """

    name: str
    column: str
    percent: bool = False
    mode: str = "max"
    label: str = ""


@dataclasses.dataclass(frozen=True)
class ReportSpec:
    """How a grid is compared with its report: title, metrics, energy protocol, notes."""

    title: str
    metrics: tuple[MetricSpec, ...]
    energy: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (round-trips through ``parse_report``)."""
        return {
            "title": self.title,
            "metrics": {m.name: {"column": m.column, "percent": m.percent, "mode": m.mode,
                                 **({"label": m.label} if m.label else {})}
                        for m in self.metrics},
            **({"energy": self.energy} if self.energy else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
        }


def parse_report(data: Any, *, grid: Grid, fail: Callable[[str, str], Exception]) -> ReportSpec:
    """Validates a ``report:`` section; every ``expected`` key of the grid must be a metric here
    (or ``train_time_h``/``energy_mj``), so no number of the report is silently left out."""
    if not isinstance(data, Mapping):
        raise fail("report", "expected a mapping with 'title' and 'metrics'")
    _check_keys(data, REPORT_KEYS, "report.", fail)
    metrics_data = data.get("metrics")
    if not isinstance(metrics_data, Mapping) or not metrics_data:
        raise fail("report.metrics", "expected a mapping metric -> {column: ...}")
    metrics = []
    for name, spec in metrics_data.items():
        key = f"report.metrics.{name}"
        if not isinstance(spec, Mapping) or not isinstance(spec.get("column"), str):
            raise fail(key, "expected {column: <trial-table column>, percent: bool, mode: ...}")
        _check_keys(spec, METRIC_KEYS, f"{key}.", fail)
        if spec.get("mode", "max") not in ("min", "max"):
            raise fail(f"{key}.mode", f"must be 'min' or 'max', got {spec['mode']!r}")
        metrics.append(MetricSpec(name=str(name), column=spec["column"],
                                  percent=bool(spec.get("percent", False)),
                                  mode=str(spec.get("mode", "max")),
                                  label=str(spec.get("label") or "")))
    known = {m.name for m in metrics} | EXTRA_EXPECTED
    for cell in grid.cells:
        extra = sorted(set(cell.expected) - known)
        if extra:
            raise fail(f"grid.cells.{cell.name}.expected.{extra[0]}",
                       f"not a report metric; add it under report.metrics or use one of "
                       f"{', '.join(sorted(known))}")
    notes = data.get("notes") or []
    if not isinstance(notes, list):
        raise fail("report.notes", "expected a list of strings")
    return ReportSpec(title=str(data.get("title") or "report"), metrics=tuple(metrics),
                      energy=str(data.get("energy") or ""), notes=tuple(map(str, notes)))


def cell_values(cell: GridCell, fixed: Mapping[str, Any]) -> dict[str, Any]:
    """The cell's values that no override replaces (a key in ``fixed`` is an override, because a
    cell may not repeat one of the space's own fixed keys).

    ``epochs`` is the exception: ``fixed["epochs"]`` is always set (``--max-epochs``), so a
    cell's own epochs are capped by it instead of replaced (cheap cells can train longer than
    expensive ones, and ``--smoke``/``--max-epochs`` still shrink every cell).
    """
    values = {k: v for k, v in cell.config.items() if k not in fixed}
    if "epochs" in cell.config and "epochs" in fixed:
        values["epochs"] = min(int(cell.config["epochs"]), int(fixed["epochs"]))
    return values


@dataclasses.dataclass(frozen=True)
class GridDefineByRun:
    """Define-by-run function of a grid space: asks GridSampler for ``cell`` and ``seed`` and
    returns the cell's values as constants (Ray's OptunaSearch merges them into the config).

    Args:
        grid: the grid.
        fixed: the effective fixed values (their keys override the cell's).
    """

    grid: Grid
    fixed: Mapping[str, Any]

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        name = trial.suggest_categorical(CELL_KEY, [c.name for c in self.grid.cells])
        trial.suggest_categorical(SEED_KEY, list(self.grid.seeds))
        return cell_values(self.grid.cell(str(name)), self.fixed)


def grid_settings(grid: Grid, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Sweep settings a grid imposes: one trial per (cell, seed) through ``GridSampler``.

    Raises:
        ValueError: ``--samples`` or ``--sampler`` given for a grid space.
    """
    for key in ("samples", "sampler"):
        if overrides.get(key) is not None:
            raise ValueError(f"--{key} does not apply to a grid space: it runs each of its "
                             f"{len(grid)} (cell, seed) pairs once; drop --{key}")
    return {"samples": len(grid), "sampler": "grid",
            "sampler_options": {"search_space": grid.sampler_space()}}


def strip_cell(trainable: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """The trainable, called without the ``cell`` label (config dataclasses reject it)."""

    @functools.wraps(trainable)
    def run(config: dict[str, Any]) -> Any:
        return trainable({k: v for k, v in config.items() if k != CELL_KEY})

    return run


def parse_grid(data: Any, *, fixed: Mapping[str, Any], fail: Callable[[str, str], Exception]
               ) -> Grid:
    """Validates a ``grid:`` section (schema in the module docstring).

    Args:
        data: the section as loaded from YAML.
        fixed: the space's fixed values (a cell may not repeat one).
        fail: ``(key, problem) -> exception`` producing the one-line space error.
    """
    if not isinstance(data, Mapping):
        raise fail("grid", "expected a mapping with 'seeds' and 'cells'")
    _check_keys(data, GRID_KEYS, "grid.", fail)
    seeds = parse_seeds(data.get("seeds", [0]), key="grid.seeds", fail=fail)
    if SEED_KEY in fixed:
        raise fail(f"fixed.{SEED_KEY}", "a grid space takes its seeds from grid.seeds; remove it")
    cells_data = data.get("cells")
    if not isinstance(cells_data, list) or not cells_data:
        raise fail("grid.cells", "expected a non-empty list of cells")
    cells = tuple(_parse_cell(i, c, fixed, fail) for i, c in enumerate(cells_data))
    names = [c.name for c in cells]
    for name in names:
        if names.count(name) > 1:
            raise fail(f"grid.cells.{name}", "duplicate cell name")
    seen: dict[str, str] = {}
    for cell in cells:
        key = repr(sorted(cell.config.items()))
        if key in seen:
            raise fail(f"grid.cells.{cell.name}", f"same config as cell {seen[key]!r}")
        seen[key] = cell.name
    return Grid(seeds=seeds, cells=cells)


def parse_seeds(seeds: Any, *, key: str, fail: Callable[[str, str], Exception]
                ) -> tuple[int, ...]:
    """A non-empty list of distinct integers (``grid.seeds``, ``smoke.seeds``)."""
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise fail(key, f"expected a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise fail(key, "duplicate seeds")
    return tuple(seeds)


def _parse_cell(index: int, data: Any, fixed: Mapping[str, Any],
                fail: Callable[[str, str], Exception]) -> GridCell:
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise fail(f"grid.cells[{index}]", "expected a mapping with a 'name' string")
    name = data["name"]
    key = f"grid.cells.{name}"
    if not name or not all(ch.isalnum() or ch in "_-" for ch in name):
        raise fail(key, "cell names use letters, digits, '_' and '-' only")
    _check_keys(data, CELL_KEYS, f"{key}.", fail)
    config = data.get("config") or {}
    if not isinstance(config, Mapping):
        raise fail(f"{key}.config", "expected a mapping of trainable config values")
    for k, v in config.items():
        # epochs may be in both: fixed["epochs"] (always set from --max-epochs, so also in the
        # space.yaml a sweep stores) caps a cell's own epochs (``cell_values``).
        if k in fixed and k != "epochs":
            raise fail(f"{key}.config.{k}", "also under 'fixed'; keep one")
        if k in (CELL_KEY, SEED_KEY):
            raise fail(f"{key}.config.{k}", f"'{k}' is set by the grid itself")
        if not isinstance(v, GRID_VALUE_TYPES):
            raise fail(f"{key}.config.{k}", f"expected a scalar, got {type(v).__name__}")
    expected = data.get("expected") or {}
    if not isinstance(expected, Mapping) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in expected.values()
    ):
        raise fail(f"{key}.expected", "expected a mapping metric -> number")
    return GridCell(name=name, label=str(data.get("label") or name), config=dict(config),
                    expected={str(k): float(v) for k, v in expected.items()},
                    note=str(data.get("note") or ""))


def _check_keys(data: Mapping[str, Any], allowed: frozenset[str], prefix: str,
                fail: Callable[[str, str], Exception]) -> None:
    unknown = sorted(set(map(str, data)) - allowed)
    if unknown:
        raise fail(f"{prefix}{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
