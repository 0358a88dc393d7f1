"""Hyperparameter importance per objective, from the trial table, with Optuna's evaluators.

The table's trials are added to an in-memory Optuna study (``optuna.trial.create_trial``) and
``optuna.importance.get_param_importances`` ranks the searched parameters with fANOVA (Hutter et
al. 2014; random-forest functional ANOVA, needs scikit-learn, which MLflow already installs) or,
without scikit-learn, PED-ANOVA (Watanabe et al. 2023). Importances are normalised to sum to 1.

Conditional parameters (``tau`` only for leaky neurons, ``D`` only for I-LIF) are missing from the
trials where they are inactive, and Optuna's evaluators drop every trial that lacks one of the
parameters. They are therefore imputed: an inactive categorical gets its own category ``n/a``, an
inactive numeric parameter the median of its active values (geometric median on log scales), so
its importance measures its effect where it exists, while whether it exists at all is credited to
the parent (``neuron``). Which trials were used is reported with the result: completed trials
when there are enough of them (an early-stopped trial's value is a truncated one), otherwise
every trial with a finite value.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from snnsearch.reporting.params import INACTIVE, ParamInfo, label

if TYPE_CHECKING:
    import pandas as pd

MIN_COMPLETED = 8  # fewer completed trials than this: use early-stopped ones too
MIN_TRIALS = 4


@dataclasses.dataclass(frozen=True)
class Importance:
    """Importances of one objective.

    Args:
        objective: metric name; mode: "min"/"max".
        values: parameter → importance (sums to 1), most important first; empty if not computable.
        trials: number of trials used; basis: which ones ("completed trials" / "all trials ...").
        evaluator: the Optuna evaluator's name; note: why nothing was computed, if so.
    """

    objective: str
    mode: str
    values: dict[str, float]
    trials: int
    basis: str
    evaluator: str
    note: str = ""


def objective_column(table: pd.DataFrame, metric: str) -> str | None:
    """``best_<metric>`` (the val-selected value) if the table has it, else ``last/<metric>``."""
    for col in (f"best_{metric}", f"last/{metric}"):
        if col in table and table[col].notna().any():
            return col
    return None


def _rows(table: pd.DataFrame, column: str) -> tuple[pd.DataFrame, str]:
    values = table[column].astype(float)
    finite = table[np.isfinite(values.to_numpy())]
    completed = finite[finite["status"] == "completed"] if "status" in finite else finite
    if len(completed) >= MIN_COMPLETED:
        return completed, "completed trials"
    return finite, "all trials with a value (few completed; early-stopped values are truncated)"


def _distribution(param: ParamInfo, series: pd.Series) -> tuple[Any, list[Any]]:
    """Optuna distribution and the imputed per-trial values for one parameter."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    raw = list(series)
    if param.categorical or not _all_numeric(raw):
        labels = [label(v) for v in raw]
        return CategoricalDistribution(sorted(set(labels))), labels
    active = np.array([float(v) for v in raw if not _missing(v)])
    low = min(float(param.low) if param.low is not None else active.min(), active.min())
    high = max(float(param.high) if param.high is not None else active.max(), active.max())
    fill = float(np.exp(np.median(np.log(active)))) if param.log else float(np.median(active))
    if param.kind == "int":
        values = [round(fill) if _missing(v) else int(v) for v in raw]
        return IntDistribution(int(low), int(high), log=param.log), values
    values = [fill if _missing(v) else float(v) for v in raw]
    return FloatDistribution(low, high, log=param.log and low > 0), values


def importances(
    table: pd.DataFrame,
    params: Sequence[ParamInfo],
    objectives: Sequence[tuple[str, str]],
    *,
    seed: int = 0,
) -> list[Importance]:
    """One :class:`Importance` per objective.

    Args:
        table: trial table (``config/<param>``, ``best_<metric>`` / ``last/<metric>``, status).
        params: the searched parameters (:func:`snnsearch.reporting.params.load_params`).
        objectives: ``(metric, mode)`` pairs.
        seed: the evaluator's random-forest seed (same table, same numbers).
    """
    return [_one(table, params, metric, mode, seed) for metric, mode in objectives]


def _one(table: pd.DataFrame, params: Sequence[ParamInfo], metric: str, mode: str,
         seed: int) -> Importance:
    import optuna

    evaluator, name = _evaluator(seed)
    column = objective_column(table, metric)
    if column is None:
        return Importance(metric, mode, {}, 0, "", name, f"no trial reported {metric}")
    rows, basis = _rows(table, column)
    used = [p for p in params if p.column in rows and rows[p.column].astype(str).nunique() > 1]
    values = rows[column].astype(float).to_numpy()
    if len(rows) < MIN_TRIALS or not used or np.ptp(values) == 0:
        why = (f"{len(rows)} trials with a value (need {MIN_TRIALS})" if len(rows) < MIN_TRIALS
               else "no parameter varied" if not used else f"{metric} is the same in every trial")
        return Importance(metric, mode, {}, len(rows), basis, name, why)
    dists, columns = {}, {}
    for p in used:
        dists[p.name], columns[p.name] = _distribution(p, rows[p.column])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for i, value in enumerate(values):
        study.add_trial(optuna.trial.create_trial(
            params={n: columns[n][i] for n in dists}, distributions=dists, value=float(value)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                        normalize=True)
    total = sum(found.values())
    if not total > 0:
        return Importance(metric, mode, {}, len(rows), basis, name, "all importances are zero")
    ranked = dict(sorted(((k, v / total) for k, v in found.items()), key=lambda kv: -kv[1]))
    return Importance(metric, mode, ranked, len(rows), basis, name)


def _evaluator(seed: int) -> tuple[Any, str]:
    import optuna

    try:
        import sklearn  # noqa: F401 - fANOVA's random forest
    except ImportError:
        return optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"
    # 32 trees of depth 16 instead of Optuna's 64 x 64: the same ranking on our 200-trial
    # benchmark table in a quarter of the time (docs/benchmarks.md, issue 12).
    evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=32, max_depth=16, seed=seed)
    return evaluator, "fANOVA"


def _all_numeric(values: Sequence[Any]) -> bool:
    present = [v for v in values if not _missing(v)]
    return bool(present) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in present)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == INACTIVE
