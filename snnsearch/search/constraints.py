"""Hard constraints on trial metrics (``--constraint energy_mj<=0.5``): parsing, violation,
feasibility, and the Pareto front of the feasible trials.

Shared by the constrained Optuna sampler (``pruned_optuna``), the Pareto report and the settings,
so "feasible" has one definition. Works on the same minimisation space as
:mod:`snnsearch.search.pareto`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from snnsearch.search.pareto import as_minimization, pareto_mask

_CONSTRAINT_OPS = ("<=", ">=")


@dataclass(frozen=True, kw_only=True)
class Constraint:
    """A hard bound on one reported metric: ``metric <= bound`` or ``metric >= bound``.

    Args:
        metric: result key (``energy_mj``, ``val_acc``...).
        op: ``"<="`` or ``">="``.
        bound: the limit, in the metric's units.
    """

    metric: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in _CONSTRAINT_OPS:
            raise ValueError(f"constraint op {self.op!r}: use '<=' or '>='")
        if not math.isfinite(self.bound):
            raise ValueError(f"constraint {self.metric}{self.op}{self.bound}: bound must be finite")

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"

    def violation(self, value: Any) -> float:
        """How far ``value`` breaks the bound, relative to ``max(|bound|, 1e-12)``; <= 0 is
        feasible (Optuna's convention), a missing or non-finite value counts as 1.0 (violated).

        Relative, so violations of metrics in different units (mJ, accuracy) can be summed the
        way Optuna's samplers sum them.
        """
        try:
            v = float(value)
        except (TypeError, ValueError):
            return 1.0
        if not math.isfinite(v):
            return 1.0
        scale = max(abs(self.bound), 1e-12)
        return (v - self.bound) / scale if self.op == "<=" else (self.bound - v) / scale


def parse_constraint(spec: str) -> Constraint:
    """Parse the CLI form ``metric<=bound`` / ``metric>=bound`` (spaces allowed).

    Raises:
        ValueError: one line naming the problem and the expected form.
    """
    text = str(spec).strip()
    for op in _CONSTRAINT_OPS:
        name, sep, bound = text.partition(op)
        if sep:
            name, bound = name.strip(), bound.strip()
            try:
                value = float(bound)
            except ValueError:
                value = math.nan
            if not name or not math.isfinite(value):
                break
            return Constraint(metric=name, op=op, bound=value)
    raise ValueError(
        f"constraint {spec!r} is not 'metric<=number' or 'metric>=number' "
        "(e.g. --constraint energy_mj<=0.5 --constraint val_acc>=0.98)"
    )


def parse_constraints(specs: Sequence[str | Constraint] | None) -> tuple[Constraint, ...]:
    """Parse every spec (repeated ``--constraint``); a metric bounded twice the same way is an
    error (the second bound would silently win)."""
    out: list[Constraint] = []
    for spec in specs or ():
        c = spec if isinstance(spec, Constraint) else parse_constraint(spec)
        if any(o.metric == c.metric and o.op == c.op for o in out):
            raise ValueError(f"constraint {c.metric}{c.op} is given twice: keep one bound")
        out.append(c)
    return tuple(out)


def constraint_violations(
    rows: Sequence[Mapping[str, Any]], constraints: Sequence[Constraint]
) -> np.ndarray:
    """(n_rows, n_constraints) array of :meth:`Constraint.violation` (<= 0 feasible)."""
    return np.array(
        [[c.violation(row.get(c.metric)) for c in constraints] for row in rows], dtype=float
    ).reshape(len(rows), len(constraints))


def feasible_mask(
    rows: Sequence[Mapping[str, Any]], constraints: Sequence[Constraint]
) -> np.ndarray:
    """True for rows that satisfy every constraint (all True without constraints)."""
    if not constraints:
        return np.ones(len(rows), dtype=bool)
    return np.all(constraint_violations(rows, constraints) <= 0, axis=1)


def feasible_pareto_mask(
    values: ArrayLike, modes: Sequence[str], feasible: ArrayLike
) -> np.ndarray:
    """Pareto mask over the feasible rows only (infeasible rows are never on the front).

    Args:
        values: (n, k) raw objective values.
        modes: ``"min"``/``"max"`` per column.
        feasible: boolean mask of length n (see :func:`feasible_mask`).
    """
    feas = np.asarray(feasible, dtype=bool)
    out = np.zeros(feas.size, dtype=bool)
    if feas.any():
        pts = as_minimization(np.asarray(values, dtype=float)[feas], modes)
        out[np.flatnonzero(feas)] = pareto_mask(pts)
    return out
