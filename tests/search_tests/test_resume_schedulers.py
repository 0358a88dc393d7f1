"""ASHA and MO-ASHA survive a killed driver: SIGKILL the sweep driver mid-sweep, ``--resume``.

Ray does not snapshot scheduler state (``SchedulerStateCallback`` does). Checked for both
schedulers on the quadratic testing trainable, sequentially (concurrency 1, fixed seed) so the
interrupted-and-resumed sweep can be compared with an uninterrupted reference: every trial's
results, in trial order, fed through a fresh scheduler built from the same settings must stop
each trial at exactly the epoch where it stopped; stopped trials do not run again; MLflow holds
one child per trial; the Parquet table has every trial.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from snnsearch.sweep.cli import main
from snnsearch.testing.sweeps import (
    recorded_finished,
    slow_quadratic_space,
    stop_process_group,
    sweep_runs,
)
from snnsearch.tracking import mlflow_logging as M

REPO = Path(__file__).resolve().parents[2]
SAMPLES, EPOCHS = 8, 4


@dataclass(frozen=True)
class _Trial:
    trial_id: str


def _results(sweep_dir: Path) -> dict[str, list[dict]]:
    """trial_id -> every result Ray wrote for it (in order), in trial creation order (the
    trial index that follows the id in the trial directory name)."""
    found = []
    for path in sweep_dir.glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        if rows:
            tid = rows[0]["trial_id"]
            index = int(path.parent.name.split(f"{tid}_", 1)[1].split("_")[0])
            found.append((index, tid, rows))
    return {tid: rows for _, tid, rows in sorted(found)}


def _reference_epochs(scheduler_name: str, results: dict[str, list[dict]]) -> dict[str, int]:
    """Epochs each trial would run in an uninterrupted sequential sweep: its (deduplicated)
    results fed, in trial order, through a fresh scheduler with the sweep's settings."""
    from ray.tune.schedulers import TrialScheduler

    from snnsearch.search.schedulers import SchedulerSettings, build_scheduler

    sched = build_scheduler(scheduler_name, SchedulerSettings(
        metric="val_acc", mode="max", max_t=EPOCHS, grace_period=1, reduction_factor=2,
        objectives=(("val_acc", "max"), ("energy_mj", "min")), seed=0))
    sched.set_search_properties("val_acc", "max")
    expected = {}
    for tid, rows in results.items():
        trial = _Trial(tid)
        sched.on_trial_add(None, trial)
        by_epoch = {int(r["epoch"]): r for r in rows}
        last = None
        for epoch in sorted(by_epoch):
            last = by_epoch[epoch]
            if sched.on_trial_result(None, trial, dict(last)) == TrialScheduler.STOP:
                break
        sched.on_trial_complete(None, trial, dict(last))
        expected[tid] = int(last["epoch"])
    return expected


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["asha", "moasha"])
def test_scheduler_state_survives_killed_driver(
    scheduler: str, ray_local: None, tmp_path: Path, mlflow_uri: str
) -> None:
    import ray

    name = f"resume-{scheduler}"
    space = slow_quadratic_space(tmp_path, 0.4)
    args = ["--space", str(space), "--storage", str(tmp_path / "ray"),
            "--name", name, "--samples", str(SAMPLES), "--max-epochs", str(EPOCHS),
            "--grace", "1", "--reduction-factor", "2", "--scheduler", scheduler,
            "--objectives", "val_acc:max,energy_mj:min", "--concurrency", "1", "--seed", "0",
            "--no-silence", "--mlflow-uri", mlflow_uri]
    sweep_dir = tmp_path / "ray" / name
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
           "TUNE_GLOBAL_CHECKPOINT_S": "0"}  # snapshot after every step: kill lands anywhere
    driver = subprocess.Popen(
        [sys.executable, str(REPO / "sweeps" / "mnist.py"), *args], env=env,
        stdout=open(tmp_path / "driver.log", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while len(recorded_finished(sweep_dir)) < SAMPLES // 2:
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "trials did not finish in time"
            time.sleep(0.2)
    finally:
        stop_process_group(driver, timeout=0)  # SIGKILL: a crashed driver
    finished_before = recorded_finished(sweep_dir)
    assert SAMPLES // 2 <= len(finished_before) < SAMPLES
    lines_before = {t: len(r) for t, r in _results(sweep_dir).items()}

    assert main("quadratic", [*args, "--resume"]) == 0

    results = _results(sweep_dir)
    assert len(results) == SAMPLES
    # Stopped/finished trials did not run again.
    assert all(len(results[t]) == lines_before[t] for t in finished_before)
    # No trial ran past the rung at which the uninterrupted sweep stops it (nor stopped early).
    expected = _reference_epochs(scheduler, results)
    ran = {t: max(int(r["epoch"]) for r in rows) for t, rows in results.items()}
    assert ran == expected
    assert any(e < EPOCHS for e in expected.values())  # the scheduler did stop trials
    table = pd.read_parquet(sweep_dir / "trials.parquet")
    assert sorted(table["trial_id"]) == sorted(results)
    assert dict(zip(table["trial_id"], table["epochs_run"], strict=True)) == expected
    parent_id = (sweep_dir / M.PARENT_ID_FILE).read_text().strip()
    parents, children = sweep_runs(mlflow_uri, parent_run_id=parent_id)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    tags = [c.data.tags[M.TRIAL_TAG] for c in children]
    assert sorted(tags) == sorted(set(tags)) == sorted(results)  # one child per trial


@pytest.mark.parametrize("scheduler_name", ["asha", "moasha"])
def test_state_round_trips_through_json(scheduler_name: str) -> None:
    """dump_state -> JSON -> load_state into a fresh scheduler: later decisions are identical."""
    from snnsearch.search.scheduler_state import dump_state, load_state
    from snnsearch.search.schedulers import SchedulerSettings, build_scheduler

    def fresh():
        sched = build_scheduler(scheduler_name, SchedulerSettings(
            metric="val_acc", mode="max", max_t=8, grace_period=1, reduction_factor=2,
            objectives=(("val_acc", "max"), ("energy_mj", "min")), seed=0))
        sched.set_search_properties("val_acc", "max")
        return sched

    def feed(sched, tid: str, epoch: int, acc: float) -> str:
        sched.on_trial_add(None, _Trial(tid)) if epoch == 1 else None
        return sched.on_trial_result(None, _Trial(tid), {
            "epoch": epoch, "training_iteration": epoch, "val_acc": acc, "energy_mj": 1 - acc})

    first = fresh()
    for i, acc in enumerate([0.5, 0.7, 0.3, 0.6, 0.65]):
        feed(first, f"t{i}", 1, acc)
    restored = fresh()
    load_state(restored, json.loads(json.dumps(dump_state(first))))
    later = [("t1", 2, 0.72), ("t3", 2, 0.61), ("t9", 1, 0.4), ("t1", 4, 0.8), ("t4", 2, 0.5)]
    lost = fresh()  # what Tuner.restore alone gives: empty rungs
    for tid in ("t1", "t3", "t4"):
        lost.on_trial_add(None, _Trial(tid))
    expected = [feed(first, *x) for x in later]
    assert [feed(restored, *x) for x in later] == expected
    assert [feed(lost, *x) for x in later] != expected  # the state decides
    assert dump_state(first) == dump_state(restored)
