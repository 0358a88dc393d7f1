"""Cost-aware settings from the space's ``tune:`` and the CLI to the schedulers (no Ray run):
``--time-attr cost`` gives ASHA and MO-ASHA rungs in cumulative seconds while the searcher keeps
counting epochs; the values round-trip through sweep.json; bad combinations get one line."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from snnsearch.search.budget import ComputeBudget
from snnsearch.search.schedulers import build_scheduler
from snnsearch.search.silence import SilenceStopper
from snnsearch.spaces.space import load_space
from snnsearch.sweep.preflight import input_warnings
from snnsearch.sweep.settings import SweepSettings, resolve_settings
from snnsearch.sweep.tuner import _stopper, scheduler_settings
from snnsearch.testing.sweeps import QUADRATIC_SPACE

COST = {"time_attr": "cost", "grace_s": 2.0, "max_s": 18.0, "budget_s": 600.0}


def _settings(tune: dict[str, Any] | None = None, **overrides: Any) -> SweepSettings:
    space = load_space(QUADRATIC_SPACE)
    space = dataclasses.replace(space, tune={**space.tune, **(tune or {})})
    return resolve_settings(space, task="quadratic", overrides=overrides)


def test_defaults_keep_epochs_and_no_budget() -> None:
    settings = _settings()
    assert (settings.time_attr, settings.budget_s, settings.grace_s, settings.max_s) == (
        "epoch", None, None, None)
    sched = scheduler_settings(settings)
    assert (sched.time_attr, sched.max_t, sched.grace_period) == ("training_iteration", 4, 1)
    assert isinstance(_stopper(settings), SilenceStopper)  # as before: no budget stopper


def test_yaml_keys_then_cli_flags_reach_settings_and_round_trip_sweep_json() -> None:
    settings = _settings(COST, budget_s="90")  # the flag wins over tune.budget_s
    assert (settings.time_attr, settings.grace_s, settings.max_s, settings.budget_s) == (
        "cost", 2.0, 18.0, 90.0)
    stored = json.loads(json.dumps(settings.to_dict()))
    keys = ("time_attr", "grace_s", "max_s", "budget_s")
    assert {k: stored[k] for k in keys} == {"time_attr": "cost", "grace_s": 2.0, "max_s": 18.0,
                                            "budget_s": 90.0}
    # A sweep.json written before these fields existed resumes with today's behaviour.
    old = {k: v for k, v in dataclasses.asdict(_settings()).items() if k not in keys}
    assert SweepSettings(**old).time_attr == "epoch" and SweepSettings(**old).budget_s is None


@pytest.mark.parametrize("name", ["asha", "moasha"])
def test_cost_rungs_are_seconds_for_asha_and_moasha(name: str) -> None:
    from ray.tune.schedulers import TrialScheduler

    settings = _settings(COST, scheduler=name, reduction_factor=3.0)
    sched_settings = scheduler_settings(settings)
    assert (sched_settings.time_attr, sched_settings.grace_period, sched_settings.max_t) == (
        "time_total_s", 2.0, 18.0)
    sched = build_scheduler(name, sched_settings)

    class Trial:
        trial_id = "a"

    sched.set_search_properties("val_acc", "max")  # what TuneConfig does
    sched.on_trial_add(None, Trial())
    # Epoch 1 already cost 19 s: past max_s, so the trial ends whatever its epoch count.
    result = {"training_iteration": 1, "epoch": 1, "time_total_s": 19.0, "val_acc": 0.5,
              "energy_mj": 1.0}
    assert sched.on_trial_result(None, Trial(), result) == TrialScheduler.STOP
    if name == "asha":
        assert sched._time_attr == "time_total_s"
        assert sorted(m for m, _ in sched._brackets[0]._rungs) == [2.0, 6.0, 18.0]
    else:
        assert sorted(sched._brackets[0].milestones) == [2.0, 6.0, 18.0]


def test_budget_comes_first_in_the_combined_stopper() -> None:
    from ray.tune.stopper import CombinedStopper

    stopper = _stopper(_settings(budget_s=50.0))
    assert isinstance(stopper, CombinedStopper)
    first, second = stopper._stoppers
    assert isinstance(first, ComputeBudget) and first.budget_s == 50.0
    assert isinstance(second, SilenceStopper)
    # A silent result stops its trial (the silence stopper) and its seconds still count.
    silent = {"time_total_s": 7.0, "training_iteration": 1, "output_rate_norm": 0.0,
              "silent_fraction": 1.0}
    assert stopper("a", silent) and first.spent_s == 7.0
    assert isinstance(_stopper(_settings(budget_s=50.0, silence=False)), ComputeBudget)


def test_yaml_values_that_are_not_seconds_or_choices_are_refused() -> None:
    with pytest.raises(ValueError, match="--time-attr 'seconds': use one of epoch, cost"):
        _settings({"time_attr": "seconds"})
    with pytest.raises(ValueError, match="--budget-seconds 'an hour': expected a number"):
        _settings({"budget_s": "an hour"})


def test_time_attr_cost_without_asha_warns() -> None:
    warnings = input_warnings(_settings(COST, scheduler="fifo"))
    assert any("--time-attr cost has no effect with --scheduler fifo" in w for w in warnings)
    assert not input_warnings(_settings(COST, scheduler="asha"))


def test_cheap_first_runs_the_first_trials_at_the_smallest_t(tmp_path) -> None:
    """``--cheap-first N`` (cost-aware sampling): the searcher the engine builds suggests the
    space's smallest T for its first N trials, then samples T again; a space that does not search
    T and a negative N are refused before Ray starts."""
    from pathlib import Path

    from snnsearch.search.searchers import build_searcher, enqueue_cheap_first
    from snnsearch.sweep.preflight import check_inputs

    space = load_space(Path(__file__).resolve().parents[2] / "search_spaces" / "mnist.yaml")
    settings = resolve_settings(space, task="mnist", overrides={"cheap_first": 4})
    assert settings.cheap_first == 4 and settings.to_dict()["cheap_first"] == 4
    searcher = build_searcher(space=space.define_by_run(), sampler="tpe", seed=0,
                              metric="val_acc", mode="max", max_t=3)
    enqueue_cheap_first(searcher, space.params, settings.cheap_first)
    # T exists only for the spiking models (the ANN twins draw none): where drawn, it is 1.
    ts = [searcher.suggest(f"t{i}").get("T") for i in range(16)]
    assert set(ts[:4]) <= {1, None} and 1 in ts[:4]
    assert {t for t in ts[4:] if t is not None} - {1}
    with pytest.raises(ValueError, match="--cheap-first"):
        resolve_settings(space, task="mnist", overrides={"cheap_first": -1})
    fixed_t = space.with_fixed({"T": 4})
    bad = resolve_settings(fixed_t, task="mnist", overrides={"cheap_first": 2,
                                                             "storage": str(tmp_path)})
    with pytest.raises(ValueError, match="--cheap-first needs a space that searches 'T'"):
        check_inputs(bad, fixed_t)
