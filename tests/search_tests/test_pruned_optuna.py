"""The sampler sees early-stopped and silent trials as PRUNED, errors as FAIL.

Unit tests drive the searcher by hand the way Ray's TuneController does; the ``ray`` tests run
real sweeps (ASHA and MO-ASHA, with the silence stopper) and read the Optuna study afterwards.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from snnsearch.search.pruned_optuna import (
    SILENCE_CONSTRAINT,
    UNFINISHED_CONSTRAINT,
    PrunedOptunaSearch,
)

SPACE = {"x": FloatDistribution(0.0, 1.0)}
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _searcher(**kw: Any) -> PrunedOptunaSearch:
    args: dict[str, Any] = dict(
        metric="val_acc", mode="max", max_t=4, sampler=optuna.samplers.TPESampler(seed=0)
    )
    args.update(kw)
    return PrunedOptunaSearch(SPACE, **args)


def _res(it: int, acc: float, **extra: Any) -> dict:
    return {"training_iteration": it, "val_acc": acc, "energy_mj": 2.0 - acc, **extra}


def _run_trial(s: OptunaSearch, tid: str, results: list[dict], **complete: Any) -> None:
    """What Ray does: results before the last go to on_trial_result, the last one ends it."""
    s.suggest(tid)
    for r in results[:-1]:
        s.on_trial_result(tid, r)
    s.on_trial_complete(tid, result=results[-1] if results else None, **complete)


def _frozen(s: OptunaSearch, tid: str) -> optuna.trial.FrozenTrial:
    return s._ot_study.trials[s._ot_trials[tid].number]


def test_ray_optuna_search_tells_truncated_trial_as_complete() -> None:
    """The behaviour being fixed: Ray's searcher stores a 1-epoch score as a final one."""
    plain = OptunaSearch(SPACE, metric="val_acc", mode="max", seed=0)
    _run_trial(plain, "t", [_res(1, 0.3)])
    trial = _frozen(plain, "t")
    assert trial.state == TrialState.COMPLETE and trial.value == pytest.approx(0.3)


def test_single_objective_states() -> None:
    s = _searcher()
    _run_trial(s, "full", [_res(i, 0.2 * i) for i in range(1, 5)])
    _run_trial(s, "asha", [_res(1, 0.1), _res(2, 0.15)])
    _run_trial(s, "silent", [_res(1, 0.1, stop_reason="silent")])
    _run_trial(s, "crash", [_res(1, 0.2)], error=True)
    _run_trial(s, "nan", [_res(i, math.nan) for i in range(1, 5)])

    full, asha, silent = _frozen(s, "full"), _frozen(s, "asha"), _frozen(s, "silent")
    assert full.state == TrialState.COMPLETE and full.value == pytest.approx(0.8)
    assert full.user_attrs["stop_reason"] == "completed"
    # Pruned at epoch 2: Optuna keeps the value at the stopping epoch as an intermediate value.
    assert asha.state == TrialState.PRUNED
    assert asha.intermediate_values == {1: 0.1, 2: 0.15} and asha.value == pytest.approx(0.15)
    assert asha.user_attrs["stop_reason"] == "early_stopped"
    assert silent.state == TrialState.PRUNED and silent.constraints == {SILENCE_CONSTRAINT: 1.0}
    assert silent.user_attrs["stop_reason"] == "silent"
    assert _frozen(s, "crash").state == TrialState.FAIL
    nan = _frozen(s, "nan")
    assert nan.state == TrialState.PRUNED and nan.user_attrs["stop_reason"] == "non_finite"
    assert asha.constraints == {} and full.constraints == {}


def test_multi_objective_states() -> None:
    # n_startup_trials=1: the last suggest() runs the TPE model over pruned/infeasible trials.
    s = _searcher(metric=["val_acc", "energy_mj"], mode=["max", "min"],
                  sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=1))
    _run_trial(s, "full", [_res(i, 0.2 * i) for i in range(1, 5)])
    _run_trial(s, "moasha", [_res(1, 0.1)])
    _run_trial(s, "silent", [_res(1, 0.1, stop_reason="silent")])
    full, cut = _frozen(s, "full"), _frozen(s, "moasha")
    assert full.state == TrialState.COMPLETE and full.values == pytest.approx([0.8, 1.2])
    # No intermediate values in multi-objective studies: progress travels as a violated
    # constraint and the truncated vector as (infeasible) values.
    assert cut.state == TrialState.COMPLETE and cut.values == pytest.approx([0.1, 1.9])
    assert cut.constraints == {UNFINISHED_CONSTRAINT: pytest.approx(0.75)}
    assert cut.user_attrs["truncated_values"] == pytest.approx([0.1, 1.9])
    assert cut.user_attrs["stop_reason"] == "early_stopped"
    assert _frozen(s, "silent").constraints == {
        SILENCE_CONSTRAINT: 1.0, UNFINISHED_CONSTRAINT: pytest.approx(0.75)}
    assert full.constraints == {}
    # Infeasible trials never reach Optuna's own front.
    assert [t.number for t in s._ot_study.best_trials] == [full.number]
    # The sampler keeps working with pruned and infeasible trials in the study.
    assert 0.0 <= s.suggest("next")["x"] <= 1.0


def test_tpe_splits_silent_after_pruned_after_complete() -> None:
    """Optuna 5 TPE orders complete < pruned < infeasible when picking its 'good' examples."""
    from optuna.samplers._tpe.sampler import _split_trials  # private: checks our assumption

    s = _searcher()
    _run_trial(s, "silent", [_res(1, 0.99, stop_reason="silent")])
    _run_trial(s, "asha", [_res(1, 0.9)])
    _run_trial(s, "full", [_res(i, 0.1) for i in range(1, 5)])
    study = s._ot_study
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    for n_below, expected in [(1, {"full"}), (2, {"full", "asha"})]:
        below, _ = _split_trials(study, trials, n_below)
        ids = {tid for tid, t in s._ot_trials.items() if t.number in {b.number for b in below}}
        assert ids == expected


def _scripted_mo_study(sampler: optuna.samplers.BaseSampler) -> PrunedOptunaSearch:
    """Four multi-objective trials, lowest numbers pruned earliest: two cut at rung 0 (epoch 1),
    one cut at the next rung (epoch 2 of 4), one complete. Truncated accuracies are equal so
    only progress can separate the pruned ones."""
    s = _searcher(metric=["val_acc", "energy_mj"], mode=["max", "min"], sampler=sampler)
    _run_trial(s, "rung0_a", [_res(1, 0.3, epoch=1)])
    _run_trial(s, "rung0_b", [_res(1, 0.3, epoch=1)])
    _run_trial(s, "rung1", [_res(1, 0.3, epoch=1), _res(2, 0.3, epoch=2)])
    _run_trial(s, "full", [_res(i, 0.2 * i, epoch=i) for i in range(1, 5)])
    return s


def _ids(s: PrunedOptunaSearch, trials: list) -> set[str]:
    numbers = {t.number for t in trials}
    return {tid for tid, t in s._ot_trials.items() if t.number in numbers}


def test_tpe_ranks_pruned_trials_by_progress_in_multi_objective_studies() -> None:
    from optuna.samplers._tpe.sampler import _split_trials  # private: checks our assumption

    s = _scripted_mo_study(optuna.samplers.TPESampler(seed=0, n_startup_trials=1))
    study = s._ot_study
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    below, _ = _split_trials(study, trials, 2)
    # Without progress all pruned trials score alike and trial number (rung0_a) would win.
    assert _ids(s, below) == {"full", "rung1"}
    assert 0.0 <= s.suggest("next")["x"] <= 1.0  # the model fits over these trials


def test_nsga2_ranks_pruned_trials_by_progress() -> None:
    from optuna.samplers.nsgaii._elite_population_selection_strategy import (
        NSGAIIElitePopulationSelectionStrategy,
    )

    s = _scripted_mo_study(optuna.samplers.NSGAIISampler(seed=0, population_size=2))
    study = s._ot_study
    # NSGA-II's population holds COMPLETE trials only: stopped ones must be in it to count.
    population = study.get_trials(states=(TrialState.COMPLETE,))
    assert _ids(s, population) == {"full", "rung1", "rung0_a", "rung0_b"}
    elite = NSGAIIElitePopulationSelectionStrategy(population_size=2)(study, population)
    assert _ids(s, elite) == {"full", "rung1"}
    assert 0.0 <= s.suggest("next")["x"] <= 1.0


def test_user_constraints_make_trials_infeasible() -> None:
    s = _searcher(metric=["val_acc", "energy_mj"], mode=["max", "min"],
                  constraints=["energy_mj<=1.5", "val_acc>=0.5"])
    _run_trial(s, "ok", [_res(i, 0.2 * i, epoch=i) for i in range(1, 5)])  # acc .8, energy 1.2
    _run_trial(s, "hot", [_res(i, 0.1 * i, epoch=i) for i in range(1, 5)])  # acc .4, energy 1.6
    ok, hot = _frozen(s, "ok"), _frozen(s, "hot")
    assert all(v <= 0 for v in ok.constraints.values())
    assert hot.constraints["constraint:energy_mj<=1.5"] == pytest.approx(0.1 / 1.5)
    assert hot.constraints["constraint:val_acc>=0.5"] == pytest.approx(0.2)
    assert [t.number for t in s._ot_study.best_trials] == [ok.number]


def test_keeps_multi_objective_when_tune_config_names_one_metric() -> None:
    from ray import tune

    s = PrunedOptunaSearch(metric=["val_acc", "energy_mj"], mode=["max", "min"], max_t=4)
    assert s.set_search_properties("val_acc", "max", {"x": tune.uniform(0, 1)}) is True
    assert len(s._ot_study.directions) == 2
    with pytest.raises(ValueError, match="not among the searcher's objectives"):
        PrunedOptunaSearch(metric=["a", "b"], mode=["max", "min"], max_t=4).set_search_properties(
            "c", "max", {"x": tune.uniform(0, 1)}
        )


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="must both be str or equal-length lists"):
        PrunedOptunaSearch(SPACE, metric=["a", "b"], mode="max", max_t=4)
    with pytest.raises(ValueError, match="max_t=0"):
        PrunedOptunaSearch(SPACE, metric="a", mode="max", max_t=0)


# Run in this order, one at a time, so rung decisions do not depend on timing.
POINTS = [{"x": 0.9}, {"x": 0.1}, {"x": 0.3}, {"x": 0.4}]


def _sweep(tmp_path: Path, searcher: PrunedOptunaSearch, scheduler: Any, **tune_kw: Any) -> Any:
    """Sequential sweep of a scripted trainable: x < 0.2 is silent, accuracy grows with x."""
    from ray import tune

    from snnsearch.search.silence import SilenceStopper

    def trainable(config: dict) -> None:
        x = config["x"]
        for epoch in range(1, 5):
            silent = x < 0.2
            tune.report({
                "val_acc": x * epoch / 4, "energy_mj": 2.0 - x,
                "output_firing_rate": 0.0 if silent else 0.2,
                "silent_fraction": 1.0 if silent else 0.0,
            })

    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, num_samples=len(POINTS),
            max_concurrent_trials=1, **tune_kw,
        ),
        param_space={"x": tune.uniform(0.0, 1.0)},
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), stop=SilenceStopper(), verbose=0
        ),
    )
    return tuner.fit()


def _check_states(searcher: PrunedOptunaSearch, grid: Any) -> dict[str, int]:
    """Every Ray trial's fate matches its Optuna state; returns a count per outcome."""
    counts: dict[str, int] = {}
    for result in grid:
        m = result.metrics
        trial = _frozen(searcher, m["trial_id"])
        reason = trial.user_attrs["stop_reason"]
        counts[reason] = counts.get(reason, 0) + 1
        if m["training_iteration"] == 4:
            assert trial.state == TrialState.COMPLETE, m
        elif isinstance(searcher._metric, list):
            # Multi-objective: told COMPLETE with the truncated vector but infeasible by progress.
            assert trial.state == TrialState.COMPLETE and trial.constraints[UNFINISHED_CONSTRAINT] > 0
            assert trial.number not in {t.number for t in searcher._ot_study.best_trials}
        else:
            assert trial.state == TrialState.PRUNED, m
        if m["training_iteration"] != 4:
            assert reason == ("silent" if m["config"]["x"] < 0.2 else "early_stopped"), m
            assert m.get("stop_reason") == ("silent" if reason == "silent" else None)
    return counts



@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_asha_sweep_reaches_sampler_as_pruned(tmp_path: Path) -> None:
    from ray.tune.schedulers import ASHAScheduler

    # space=None: the sweep's param_space supplies it through set_search_properties.
    searcher = PrunedOptunaSearch(
        metric="val_acc", mode="max", max_t=4, sampler=optuna.samplers.TPESampler(seed=0),
        points_to_evaluate=POINTS,
    )
    scheduler = ASHAScheduler(max_t=4, grace_period=1, reduction_factor=2)
    grid = _sweep(tmp_path, searcher, scheduler, metric="val_acc", mode="max")
    # 0.9 runs first and leads every rung; 0.3 falls below the rung-1 cutoff, 0.4 below rung 2's.
    assert _check_states(searcher, grid) == {"completed": 1, "silent": 1, "early_stopped": 2}


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_moasha_sweep_reaches_sampler_as_pruned(tmp_path: Path) -> None:
    from snnsearch.search.moasha import MultiObjectiveASHA

    searcher = PrunedOptunaSearch(
        metric=["val_acc", "energy_mj"], mode=["max", "min"], max_t=4,
        sampler=optuna.samplers.TPESampler(seed=0), points_to_evaluate=POINTS,
    )
    scheduler = MultiObjectiveASHA(
        objectives="val_acc:max,energy_mj:min", max_t=4, grace_period=1, reduction_factor=2,
        seed=0,
    )
    # TuneConfig names one objective (for get_best_result); the study must stay 2-objective.
    grid = _sweep(tmp_path, searcher, scheduler, metric="val_acc", mode="max")
    assert len(searcher._ot_study.directions) == 2
    # 0.9 dominates everyone: 0.3 is last of 2 at rung 1; 0.4 (2nd of 3) is stopped at rung 2.
    assert _check_states(searcher, grid) == {"completed": 1, "silent": 1, "early_stopped": 2}


def test_tell_epoch_tells_every_trial_its_values_at_that_epoch() -> None:
    """BOHB-style feedback: a trial stopped at epoch 2 and one that finished are both told
    COMPLETE and feasible with their epoch-1 values (the fidelity every trial reached); a trial
    ended before epoch 1 or with an error is told as without the option; a silent one is
    infeasible."""
    s = _searcher(metric=["val_acc", "energy_mj"], mode=["max", "min"], tell_epoch=1)
    _run_trial(s, "stopped", [_res(1, 0.4), _res(2, 0.6)])
    _run_trial(s, "finished", [_res(1, 0.5), _res(2, 0.7), _res(3, 0.8), _res(4, 0.9)])
    _run_trial(s, "silent", [_res(1, 0.1), _res(2, 0.1, stop_reason="silent")])
    _run_trial(s, "errored", [_res(1, 0.3)], error=True)
    stopped, finished = _frozen(s, "stopped"), _frozen(s, "finished")
    for trial, acc in ((stopped, 0.4), (finished, 0.5)):
        assert trial.state == TrialState.COMPLETE
        assert trial.values == pytest.approx([acc, 2.0 - acc])
        assert not any(k.endswith(UNFINISHED_CONSTRAINT) for k in trial.system_attrs)
        assert trial.user_attrs["told_epoch"] == 1
    silent = _frozen(s, "silent")
    assert silent.state == TrialState.COMPLETE and silent.values == pytest.approx([0.1, 1.9])
    assert any(k.endswith(SILENCE_CONSTRAINT) for k in silent.system_attrs)
    assert _frozen(s, "errored").state == TrialState.FAIL
    # Without the option the stopped trial is infeasible with its epoch-2 values (unchanged).
    plain = _searcher(metric=["val_acc", "energy_mj"], mode=["max", "min"])
    _run_trial(plain, "stopped", [_res(1, 0.4), _res(2, 0.6)])
    assert _frozen(plain, "stopped").values == pytest.approx([0.6, 1.4])
    with pytest.raises(ValueError, match="tell_epoch"):
        _searcher(tell_epoch=0)
