"""Sampler and scheduler registries: every name builds, seeds repeat, unknown names list them."""

from __future__ import annotations

import pytest

from snnsearch.search.schedulers import SCHEDULERS, SchedulerSettings, build_scheduler
from snnsearch.search.searchers import SAMPLERS, build_searcher
from snnsearch.spaces.space import load_space
from snnsearch.testing.sweeps import QUADRATIC_SPACE


def _suggestions(sampler: str, seed: int, n: int = 3) -> list[dict]:
    searcher = build_searcher(
        space=load_space(QUADRATIC_SPACE).define_by_run(), sampler=sampler, seed=seed,
        metric="val_acc", mode="max",
    )
    return [searcher.suggest(f"t{i}") for i in range(n)]


def test_issue_samplers_are_registered() -> None:
    assert set(SAMPLERS.names()) >= {"tpe", "random", "cmaes", "gp", "nsga2", "qmc"}


@pytest.mark.parametrize("sampler", SAMPLERS.names())
def test_every_sampler_suggests_valid_conditional_configs(sampler: str) -> None:
    configs = _suggestions(sampler, seed=1)
    for config in configs:
        assert -2.0 <= config["x"] <= 6.0
        assert ("D" in config) == (config["neuron"] == "ilif")
    assert configs == _suggestions(sampler, seed=1)  # same seed, same first suggestions


def test_searcher_reports_results_back_to_optuna() -> None:
    searcher = build_searcher(
        space=load_space(QUADRATIC_SPACE).define_by_run(), sampler="tpe", seed=0,
        metric="val_acc", mode="max",
    )
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"val_acc": 0.5, "training_iteration": 1})
    study = searcher._ot_study
    assert study.direction.name == "MAXIMIZE"
    assert [t.value for t in study.trials] == [0.5]


def test_unknown_sampler_and_scheduler_list_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown sampler 'bayes'; choose one of: .*tpe"):
        SAMPLERS.get("bayes")
    settings = SchedulerSettings(metric="val_acc", mode="max", max_t=4)
    with pytest.raises(ValueError, match="unknown scheduler 'hyperband'; choose one of: .*asha"):
        build_scheduler("hyperband", settings)


def test_asha_takes_cli_settings_and_leaves_metric_to_tuneconfig() -> None:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    settings = SchedulerSettings(
        metric="abs_rel", mode="min", max_t=9, grace_period=2, reduction_factor=3
    )
    asha = build_scheduler("asha", settings)
    assert isinstance(asha, ASHAScheduler)
    assert asha._max_t == 9 and asha._reduction_factor == 3
    assert [b._rungs[-1][0] for b in asha._brackets] == [2]
    assert asha.metric is None  # Ray refuses a scheduler with its own metric next to TuneConfig's
    assert isinstance(build_scheduler("fifo", settings), FIFOScheduler)


def test_grace_beyond_max_epochs_is_a_one_line_error() -> None:
    settings = SchedulerSettings(metric="val_acc", mode="max", max_t=2, grace_period=5)
    with pytest.raises(ValueError, match="--grace 5 exceeds --max-epochs 2"):
        build_scheduler("asha", settings)


def test_registries_refuse_duplicates() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        SCHEDULERS.register("asha")(lambda settings: None)


def test_objectives_reach_scheduler_settings_from_cli_or_yaml() -> None:
    from snnsearch.sweep.settings import parse_objectives, resolve_settings

    space = load_space(QUADRATIC_SPACE)
    settings = resolve_settings(space, task="q",
                                overrides={"objectives": "val_acc:max,energy_mj:min"})
    assert settings.objectives == (("val_acc", "max"), ("energy_mj", "min"))
    assert parse_objectives([["abs_rel", "min"]]) == (("abs_rel", "min"),)
    with pytest.raises(ValueError, match="metric:min|max"):
        parse_objectives("val_acc:up")
