"""Report building blocks on hand-made tables with known answers: categorical axes keep every
category, log-scale parameters get log axes, fANOVA credits the parameter that drives the
objective, conditional parameters are imputed instead of dropping trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from snnsearch.reporting import figures as F
from snnsearch.reporting.importance import importances
from snnsearch.reporting.params import INACTIVE, ParamInfo


def _ticks(ax) -> list[str]:  # ax: a matplotlib Axes
    return [t.get_text() for t in ax.get_xticklabels()]


@pytest.mark.parametrize(("param", "values", "expected"), [
    # The bug of the old plots: jitter moved the lone ms_resnet point and its tick vanished.
    (ParamInfo(name="encoder", kind="categorical", choices=("ms_resnet", "resnet")),
     ["resnet"] * 9 + ["ms_resnet"], ["ms_resnet", "resnet"]),
    # Depth 18/34 is categorical in the space: two ticks, not a continuous 18..34 axis.
    (ParamInfo(name="depth", kind="categorical", choices=(18, 34)), [18, 34, 34, 18],
     ["18", "34"]),
    # A conditional categorical stored as floats with gaps: integer labels plus n/a.
    (ParamInfo(name="channels", kind="categorical", choices=(32, 64, 128), conditional=True),
     [32.0, np.nan, 128.0, 64.0], ["32", "64", "128", INACTIVE]),
])
def test_categorical_axis_keeps_every_category(param: ParamInfo, values: list,
                                               expected: list[str]) -> None:
    table = pd.DataFrame({param.column: values, "best_val_acc": np.linspace(0.5, 0.9, len(values)),
                          "status": "completed"})
    fig = F.new_figure(4, 3)
    ax = fig.add_subplot()
    F.scatter(ax, table, param, "best_val_acc", "val_acc")
    assert _ticks(ax) == expected
    low, high = ax.get_xlim()
    assert low < 0 and high > len(expected) - 1  # every tick inside the axis, whatever the jitter


def test_log_parameter_gets_a_log_axis_and_int_parameter_integer_ticks() -> None:
    table = pd.DataFrame({"config/lr": [1e-4, 1e-3, 1e-2], "config/T": [1, 4, 8],
                          "best_val_acc": [0.5, 0.9, 0.7], "status": "completed"})
    fig = F.new_figure(6, 3)
    lr_ax, t_ax = fig.subplots(1, 2)
    F.scatter(lr_ax, table, ParamInfo(name="lr", kind="float", low=1e-4, high=1e-2, log=True),
              "best_val_acc", "val_acc")
    F.scatter(t_ax, table, ParamInfo(name="T", kind="int", low=1, high=8), "best_val_acc", "v")
    fig.canvas.draw()
    assert lr_ax.get_xscale() == "log" and t_ax.get_xscale() == "linear"
    assert all(float(t).is_integer() for t in t_ax.get_xticks())


def _table(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, list[ParamInfo]]:
    """val_acc depends on lr only (and on nothing else); D exists for I-LIF trials only."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, -2, n)
    neuron = rng.choice(["lif", "ilif"], n)
    D = np.where(neuron == "ilif", rng.integers(2, 9, n), np.nan)
    acc = 0.9 - 0.1 * np.abs(np.log10(lr) + 3) + 0.002 * rng.standard_normal(n)
    table = pd.DataFrame({"config/lr": lr, "config/neuron": neuron, "config/D": D,
                          "best_val_acc": acc, "last/energy_mj": 0.01 * (1 + (neuron == "ilif")),
                          "status": "completed"})
    params = [ParamInfo(name="lr", kind="float", low=1e-4, high=1e-2, log=True),
              ParamInfo(name="neuron", kind="categorical", choices=("lif", "ilif")),
              ParamInfo(name="D", kind="int", low=2, high=8, conditional=True)]
    return table, params


def test_importances_sum_to_one_and_find_the_parameter_that_matters() -> None:
    table, params = _table()
    acc, energy = importances(table, params, [("val_acc", "max"), ("energy_mj", "min")])
    for imp in (acc, energy):
        assert imp.trials == 60  # conditional D imputed: no trial dropped
        assert all(v >= 0 for v in imp.values.values())
        assert sum(imp.values.values()) == pytest.approx(1.0)
        assert set(imp.values) == {"lr", "neuron", "D"}
    assert next(iter(acc.values)) == "lr" and acc.values["lr"] > 0.8
    assert next(iter(energy.values)) == "neuron"


def test_importance_says_why_when_it_cannot_rank() -> None:
    table, params = _table(n=3)
    (imp,) = importances(table, params, [("val_acc", "max")])
    assert imp.values == {} and "need 4" in imp.note
    (none,) = importances(table, params, [("abs_rel", "min")])
    assert "no trial reported abs_rel" in none.note
