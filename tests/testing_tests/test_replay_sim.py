"""The simulator drives the arms' searchers and schedulers exactly as Ray Tune does.

At concurrency 1 a simulated sweep and a real Ray Tune replay sweep of the same arm and seed
must produce the same trace: the same trials (recorded configurations), the same epochs, the
same stops, in the same order. Anything the simulator got wrong about Ray's call order (stopper
before scheduler, searcher told only on CONTINUE, complete after the last result) shows as a
diverging row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from snnsearch.spaces.space import load_space
from snnsearch.testing.replay import ReplayTable, epoch_cost_s
from snnsearch.testing.replay_arms import ARMS, Rungs, build_arm
from snnsearch.testing.replay_sim import Budget, RayPolicy, simulate

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "bench" / "replay_mnist.parquet"
SPACE = ROOT / "snnsearch" / "testing" / "replay_mnist.yaml"
RUNGS = Rungs(max_t=5, grace=1, eta=3.0, grace_s=2.0, max_s=1e6)


def _space(seed: int):
    return load_space(SPACE).with_fixed(
        {"table": str(TABLE), "epochs": RUNGS.max_t, "checkpoint": False, "seed": seed})


def _simulated(arm: str, seed: int, budget: Budget, concurrency: int = 1) -> list[dict]:
    space = _space(seed)
    searcher, scheduler, stoppers = build_arm(ARMS[arm], space=space, seed=seed, rungs=RUNGS)
    policy = RayPolicy(searcher, scheduler, metric="val_acc", mode="max",
                       fixed=dict(space.fixed), stoppers=stoppers)
    return simulate(ReplayTable.load(TABLE), policy, budget=budget, max_t=RUNGS.max_t,
                    concurrency=concurrency)


KEYS = ("epoch", "config_id", "stop_reason")


@pytest.mark.slow
def test_simulated_sweeps_equal_real_ray_tune_sweeps(ray_local):
    """Three arms (Ray's ASHA, MO-ASHA with the silence stopper, 45 trial-epochs each; MO-ASHA
    with rungs in compute seconds under a 60 s compute budget): identical traces, trial for
    trial."""
    from snnsearch.testing.replay_ray import ray_sweep

    cases = (("tpe_asha", 3, None), ("moasha_crowd_silence", 5, None), ("moasha_cost", 7, 60.0))
    for arm, seed, seconds in cases:
        real: list[dict] = []
        # The cost arm spends a budget of compute seconds (the engine's ComputeBudget in Ray).
        ray_sweep(arm, seed=seed, space=_space(seed), rungs=RUNGS, budget=45, concurrency=1,
                  rows=real, budget_s=seconds)
        sim = _simulated(arm, seed, Budget(epochs=45) if seconds is None else
                         Budget(seconds=seconds))
        assert len(sim) == len(real), arm
        assert len(sim) == 45 if seconds is None else sim[-1]["spent_s"] >= seconds, arm
        # Trial ids differ in form (Ray's vs sim_00000); the order in which trials first appear
        # must match.
        ids_real = list(dict.fromkeys(r["trial_id"] for r in real))
        ids_sim = list(dict.fromkeys(r["trial_id"] for r in sim))
        assert [ids_real.index(r["trial_id"]) for r in real] == \
            [ids_sim.index(r["trial_id"]) for r in sim], arm
        assert [tuple(r[k] for k in KEYS) for r in real] == \
            [tuple(r[k] for k in KEYS) for r in sim], arm
        # Ray's time_total_s is the recorded cost summed over the trial's epochs.
        cum = _cumulative(sim)
        assert [round(r["time_total_s"], 9) for r in real] == [round(c, 9) for c in cum], arm


def _cumulative(trace: list[dict]) -> list[float]:
    totals: dict[str, float] = {}
    out = []
    for r in trace:
        totals[r["trial_id"]] = totals.get(r["trial_id"], 0.0) + r["cost_s"]
        out.append(totals[r["trial_id"]])
    return out


def test_a_compute_budget_ends_the_sweep_at_the_recorded_seconds():
    """Budget(seconds=B): the sweep ends with the first result that brings the summed recorded
    cost to B, and the cost of every row is the table's."""
    table = ReplayTable.load(TABLE)
    trace = _simulated("moasha_cost", 1, Budget(seconds=60.0))
    assert trace[-1]["spent_s"] >= 60.0 > trace[-2]["spent_s"]
    for row in trace:
        curve = table.curves[row["config_id"]]
        assert row["cost_s"] == epoch_cost_s(curve[row["epoch"] - 1])


def test_cost_rungs_judge_cheap_trials_later_in_epochs():
    """With rungs in compute seconds a trial is first judged once it has spent grace_s seconds:
    cheap configurations run more epochs before their first stop than costly ones."""
    trace = _simulated("moasha_cost", 2, Budget(epochs=400))
    spent: dict[str, float] = {}
    stopped = []
    for r in trace:
        spent[r["trial_id"]] = spent.get(r["trial_id"], 0.0) + r["cost_s"]
        if r["decision"] == "stop":
            stopped.append((r["epoch"], spent[r["trial_id"]]))
    assert stopped, "no trial was stopped at a rung"
    # Every stop happened at or after the first rung in seconds, never before.
    assert all(s >= RUNGS.grace_s for _, s in stopped)
    # and some trial was stopped after more than one epoch (a cheap one reaching 2 s later).
    assert any(e > 1 for e, _ in stopped)


def test_concurrency_runs_trials_side_by_side():
    """At concurrency 4 the simulated clock advances less than the compute spent."""
    trace = _simulated("tpe_fifo", 0, Budget(epochs=60), concurrency=4)
    assert trace[-1]["clock_s"] < 0.5 * trace[-1]["spent_s"]
    # Four trials started at clock 0: each one's first epoch finishes at its own first cost.
    firsts = [r for r in trace if r["epoch"] == 1 and r["trial_id"] < "sim_00004"]
    assert len(firsts) == 4 and all(r["clock_s"] == r["cost_s"] for r in firsts)
