"""The compute-budget stopper on scripted results (no Ray run): each trial counts once at its
cumulative seconds, the sweep stops exactly at the budget, and Ray's snapshot keeps the count."""

from __future__ import annotations

import json

import pytest

from snnsearch.search.budget import ComputeBudget


def _feed(budget: ComputeBudget, trial_id: str, seconds: float) -> bool:
    return budget(trial_id, {"time_total_s": seconds, "training_iteration": 1})


def test_each_trial_counts_once_at_its_latest_cumulative_seconds() -> None:
    budget = ComputeBudget(budget_s=10.0)
    for seconds in (1.0, 2.5, 4.0):  # one trial, three epochs: 4 s spent, not 7.5
        assert _feed(budget, "a", seconds) is False  # never stops a single trial
    _feed(budget, "b", 3.0)
    assert budget.spent_s == pytest.approx(7.0)
    assert budget.per_trial == {"a": 4.0, "b": 3.0}
    assert not budget.stop_all()


def test_stop_all_exactly_at_the_budget() -> None:
    budget = ComputeBudget(budget_s=6.0)
    _feed(budget, "a", 2.0)
    _feed(budget, "b", 3.5)
    assert not budget.stop_all()  # 5.5 < 6
    _feed(budget, "b", 4.0)
    assert budget.spent_s == 6.0 and budget.stop_all()  # 6.0: reached


def test_a_rewound_trial_frees_no_budget_and_bad_values_are_skipped() -> None:
    budget = ComputeBudget(budget_s=100.0)
    _feed(budget, "a", 8.0)
    _feed(budget, "a", 5.0)  # resumed from an earlier checkpoint: those seconds were spent
    budget("a", {"training_iteration": 2})  # no seconds in the result
    _feed(budget, "a", float("nan"))
    assert budget.per_trial == {"a": 8.0}


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_budget_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="budget_s"):
        ComputeBudget(budget_s=bad)


def test_the_count_survives_rays_experiment_snapshot() -> None:
    """What ``--resume`` relies on: Ray 2.60 writes the stopper into ``experiment_state-*.json``
    (``TuneController.__getstate__`` keeps ``_stopper``) with its JSON encoder and puts it back
    on ``resume``; the spent seconds come back with it."""
    from ray.tune.stopper import CombinedStopper
    from ray.tune.utils.serialization import TuneFunctionDecoder, TuneFunctionEncoder

    budget = ComputeBudget(budget_s=10.0)
    _feed(budget, "a", 4.0)
    text = json.dumps({"_stopper": CombinedStopper(budget)}, cls=TuneFunctionEncoder)
    back = json.loads(text, cls=TuneFunctionDecoder, allow_cloudpickle=True)["_stopper"]
    restored = back._stoppers[0]
    assert restored.per_trial == {"a": 4.0} and restored.spent_s == 4.0
    _feed(restored, "b", 6.0)
    assert back.stop_all()
