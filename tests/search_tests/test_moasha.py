"""MO-ASHA stop/continue decisions on scripted results (no training, no Ray cluster)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler

from snnsearch.search.moasha import MultiObjectiveASHA
from snnsearch.search.schedulers import SchedulerSettings, moasha_from_settings

C, S = TrialScheduler.CONTINUE, TrialScheduler.STOP
OBJ = [("val_acc", "max"), ("energy_mj", "min")]


@dataclass(frozen=True)
class FakeTrial:
    """What the scheduler reads from a Ray Trial."""

    trial_id: str


def _feed(sched: MultiObjectiveASHA, tid: str, it: int, acc: float, mj: float) -> str:
    result = {"training_iteration": it, "val_acc": acc, "energy_mj": mj}
    return sched.on_trial_result(None, FakeTrial(tid), result)


def _sched(**kw: object) -> MultiObjectiveASHA:
    args = dict(objectives=OBJ, max_t=4, grace_period=1, reduction_factor=2, seed=0)
    args.update(kw)
    return MultiObjectiveASHA(**args)  # type: ignore[arg-type]


def test_scripted_rung_decisions() -> None:
    sched = _sched()  # rungs at 1, 2, 4 epochs; keep the top half
    for tid in "abcdefg":
        sched.on_trial_add(None, FakeTrial(tid))
    script = [
        # (trial, epoch, acc, mJ, expected, why)
        ("a", 1, 0.50, 10.0, C, "first at the rung"),
        ("b", 1, 0.60, 5.0, C, "dominates a: position 0 of 2"),
        ("c", 1, 0.40, 20.0, S, "dominated by a and b: position 2 of 3 >= 1.5"),
        ("d", 1, 0.90, 50.0, C, "trade-off with b: front 0, position <= 1 of 4 < 2"),
        ("e", 1, 0.55, 7.0, C, "front 1 alone (dominates a): position 2 of 5 < 2.5"),
        ("f", 1, 0.45, 15.0, S, "front 3: position 4 of 6 >= 3"),
        ("a", 2, 0.70, 10.0, C, "first at rung 2"),
        ("b", 2, 0.75, 5.0, C, "dominates a at rung 2"),
        ("d", 2, 0.65, 60.0, S, "dominated by a and b: position 2 of 3"),
        ("a", 3, 0.80, 10.0, C, "between rungs: no decision"),
        ("b", 4, 0.90, 5.0, S, "reached max_t"),
        ("g", 1, 0.99, 0.1, C, "late arrival dominating everyone at rung 1"),
    ]
    for tid, it, acc, mj, expected, why in script:
        assert _feed(sched, tid, it, acc, mj) == expected, f"{tid}@{it}: {why}"


def test_ties_are_broken_by_own_seeded_generator() -> None:
    def decisions(seed: int) -> tuple[str, str]:
        sched = _sched(seed=seed)
        first = _feed(sched, "x", 1, 0.9, 50.0)
        # Mutually non-dominated, both extremes (infinite crowding): a pure tie for one slot.
        return first, _feed(sched, "y", 1, 0.5, 5.0)

    outcomes = {decisions(s) for s in range(16)}
    assert outcomes == {(C, C), (C, S)}  # the newcomer wins some ties and loses others
    assert decisions(3) == decisions(3)


def test_one_objective_continues_top_fraction() -> None:
    sched = MultiObjectiveASHA(
        objectives="loss:min", max_t=9, grace_period=1, reduction_factor=3, seed=0
    )
    got = [
        sched.on_trial_result(None, FakeTrial(f"t{i}"), {"training_iteration": 1, "loss": v})
        for i, v in enumerate([5.0, 4.0, 6.0, 1.0, 3.0, 7.0])
    ]
    # n=1: pos 0 < 1/3; n=2: pos 0 < 2/3; n=3: pos 2 >= 1; n=4: pos 0; n=5: pos 1 < 5/3;
    # n=6: pos 5 >= 2.
    assert got == [C, C, S, C, C, S]


def test_differs_from_ray_asha_percentile_as_documented() -> None:
    """docs/moasha.md: eta=2, earlier [1, 2] (max), newcomer 1.4 -> ASHA stops, MO-ASHA not."""
    from ray.tune.schedulers import ASHAScheduler

    asha = ASHAScheduler(metric="acc", mode="max", max_t=4, grace_period=1, reduction_factor=2)
    mo = MultiObjectiveASHA(objectives="acc:max", max_t=4, grace_period=1, reduction_factor=2)
    got = {}
    for name, sched in (("asha", asha), ("moasha", mo)):
        for tid, value in (("a", 1.0), ("b", 2.0), ("c", 1.4)):
            sched.on_trial_add(None, FakeTrial(tid))
            result = {"training_iteration": 1, "acc": value}
            got[name] = sched.on_trial_result(None, FakeTrial(tid), result)
    assert got == {"asha": S, "moasha": C}


def test_missing_objective_or_silenced_result_is_not_ranked() -> None:
    sched = _sched()
    assert sched.on_trial_result(None, FakeTrial("a"), {"training_iteration": 1}) == C
    silent = {"training_iteration": 1, "val_acc": 0.1, "energy_mj": 0.0, "stop_reason": "silent"}
    sched.on_trial_complete(None, FakeTrial("s"), silent)
    # Had the silent net (lowest energy) been recorded, b would be 2nd of 2 on a tie; with it
    # excluded b is alone at the rung and must continue whatever the tie-break.
    assert _feed(sched, "b", 1, 0.5, 5.0) == C
    assert "rung 1: 1 recorded" in sched.debug_string()


def test_completed_trials_are_recorded_for_later_ranking() -> None:
    sched = _sched()
    done = {"training_iteration": 1, "val_acc": 0.9, "energy_mj": 1.0}
    sched.on_trial_complete(None, FakeTrial("best"), done)
    assert _feed(sched, "worse", 1, 0.5, 5.0) == S


def test_nan_objective_ranks_last() -> None:
    sched = _sched()
    assert _feed(sched, "a", 1, 0.5, 5.0) == C
    assert _feed(sched, "nan", 1, float("nan"), 5.0) == S


def test_nan_accuracy_with_the_lowest_energy_is_not_promoted() -> None:
    # Before: NaN accuracy became +inf on that column only, so the lowest energy kept the row
    # non-dominated (front 0 beside a) and the diverged trial continued.
    sched = _sched()
    assert _feed(sched, "a", 1, 0.5, 5.0) == C
    assert _feed(sched, "nan", 1, float("nan"), 0.01) == S
    assert _feed(sched, "b", 1, 0.4, 6.0) == C  # dominated by a only: position 1 of 3 < 1.5


def test_set_search_properties() -> None:
    sched = _sched()
    assert sched.set_search_properties(None, None) is True
    assert sched.set_search_properties("val_acc", "max") is True
    with pytest.raises(ValueError, match="not one of the MO-ASHA objectives"):
        sched.set_search_properties("val_acc", "min")
    with pytest.raises(ValueError, match="not one of the MO-ASHA objectives"):
        sched.set_search_properties("test_acc", "max")
    assert sched.metric == "val_acc"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grace_period": 5}, "exceeds max_t"),
        ({"reduction_factor": 1}, "must be > 1"),
        ({"max_t": 0}, "must be positive"),
        ({"objectives": "val_acc"}, "lacks a mode"),
        ({"brackets": 0}, "must be >= 1"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _sched(**kwargs)


def test_save_restore_keeps_rungs_and_generator(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    stream = [(f"t{i}", 1, *rng.choice([0.2, 0.5, 0.8], 1), *rng.choice([1.0, 5.0], 1))
              for i in range(12)]
    a = _sched(seed=11)
    for item in stream[:6]:
        _feed(a, *item)
    a.save(str(tmp_path / "sched.json"))
    b = _sched(seed=999)
    b.restore(str(tmp_path / "sched.json"))
    assert [_feed(a, *x) for x in stream[6:]] == [_feed(b, *x) for x in stream[6:]]


def test_factory_reads_scheduler_settings() -> None:
    settings = SchedulerSettings(
        metric="val_acc", mode="max", max_t=8, grace_period=2, reduction_factor=2,
        objectives=(("val_acc", "max"), ("energy_mj", "min")), options={"seed": 3},
    )
    sched = moasha_from_settings(settings)
    assert sched.objectives == OBJ
    assert "rung 8" in sched.debug_string() and "rung 2" in sched.debug_string()
    with pytest.raises(ValueError, match="unknown moasha scheduler_options"):
        moasha_from_settings(
            SchedulerSettings(metric="val_acc", mode="max", max_t=8, options={"eta": 2})
        )


def _feed_epoch(sched: MultiObjectiveASHA, tid: str, it: int, epoch: int, acc: float,
                mj: float) -> str:
    result = {"training_iteration": it, "epoch": epoch, "val_acc": acc, "energy_mj": mj}
    return sched.on_trial_result(None, FakeTrial(tid), result)


def test_decides_only_at_the_highest_rung_reached() -> None:
    sched = _sched(max_t=8)  # rungs at 1, 2, 4 epochs
    for tid in "abc":
        assert _feed_epoch(sched, tid, 1, 1, 0.99, 0.1 + 0.01 * ord(tid)) in (C, S)
    # x was restored from an epoch-2 checkpoint: it never reported at rung 1.
    assert _feed_epoch(sched, "x", 1, 2, 0.20, 90.0) == C  # first (alone) at rung 2
    # Between rungs 2 and 4: the decision at rung 2 stands. Falling through to rung 1, where
    # a, b and c dominate x, would stop it.
    assert _feed_epoch(sched, "x", 2, 3, 0.20, 90.0) == C
    bracket = sched._brackets[0]
    assert "x" not in bracket.recorded[1.0] and "x" in bracket.recorded[2.0]


def test_progress_is_counted_in_epochs_not_training_iteration() -> None:
    sched = _sched(max_t=8)
    # After Tuner.restore training_iteration restarts at 1 while epoch continues at 5.
    _feed_epoch(sched, "r", 1, 5, 0.5, 1.0)
    bracket = sched._brackets[0]
    assert "r" in bracket.recorded[4.0] and "r" not in bracket.recorded[1.0]
    assert _feed_epoch(sched, "r", 4, 8, 0.6, 1.0) == S  # epoch 8 = max_t, iteration only 4


def test_epsnet_tiebreak_orders_front_by_farthest_point() -> None:
    from snnsearch.search.pareto import epsilon_net_order, rank_order

    # One front: two crowded points near the accuracy end, one middle, one far end.
    pts = np.array([[0.0, 1.0], [0.02, 0.98], [0.5, 0.5], [1.0, 0.0]])
    crowd = rank_order(pts, rng=np.random.default_rng(0))
    assert set(crowd[:2]) == {0, 3} and crowd[2] == 2  # extremes, then the larger gap
    for seed in range(8):
        order = epsilon_net_order(pts, rng=np.random.default_rng(seed))
        # Every next point is the farthest from those already taken.
        for k in range(1, len(order)):
            taken, rest = pts[order[:k]], order[k:]
            gaps = [np.min(np.linalg.norm(taken - pts[j], axis=1)) for j in rest]
            assert order[k] == rest[int(np.argmax(gaps))]
    # Seeded at the crowded point 1 (seed 1), the epsilon-net ranks it first and its
    # neighbour 0 last; crowding distance always keeps both extremes (0 and 3) first.
    eps = rank_order(pts, rng=np.random.default_rng(1), tiebreak="epsnet")
    assert list(eps) == [1, 3, 2, 0]
    assert set(rank_order(pts, rng=np.random.default_rng(1))[:2]) == {0, 3}
    with pytest.raises(ValueError, match="tiebreak 'nope'"):
        rank_order(pts, tiebreak="nope")


def test_epsnet_scheduler_option_and_decisions() -> None:
    def decisions(tiebreak: str, seed: int) -> list[str]:
        sched = _sched(tiebreak=tiebreak, seed=seed)
        front = [(0.99, 1.0), (0.98, 0.98), (0.5, 0.5), (0.01, 0.0), (0.97, 0.96), (0.3, 0.2)]
        return [_feed(sched, f"t{i}", 1, acc, mj) for i, (acc, mj) in enumerate(front)]

    # Same arrivals, same seed: the epsilon-net keeps t1 (crowded next to t0), crowding stops it.
    assert decisions("crowding", 6) == [C, S, C, C, S, S]
    assert decisions("epsnet", 6) == [C, C, C, C, S, S]
    sched = moasha_from_settings(SchedulerSettings(
        metric="val_acc", mode="max", max_t=4, objectives=tuple(OBJ),
        options={"tiebreak": "epsnet"}))
    assert sched._tiebreak == "epsnet" and sched._brackets[0].tiebreak == "epsnet"
    with pytest.raises(ValueError, match="--moasha-tiebreak"):
        _sched(tiebreak="random")
