"""A cost-aware sweep through the real engine (``sweeps/*.py`` CLI in-process, local Ray): the
replay trainable reports the recorded MNIST cost of each epoch (``time_this_iter_s``), ASHA
counts rungs in cumulative seconds (``--time-attr cost``) and ``--budget-seconds`` ends the
sweep. It is interrupted (SIGINT, as Ctrl-C) early on and continued with
``--resume``: the budget counts the seconds spent before the interrupt, not from zero."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest
import yaml

from snnsearch.search.budget import ComputeBudget
from snnsearch.sweep.cli import main

REPO = Path(__file__).resolve().parents[2]
BUDGET, GRACE, MAX_S, ETA, SAMPLES = 80.0, 0.5, 4.5, 3, 60
MILESTONES = (0.5, 1.5, 4.5)  # GRACE * ETA**k <= MAX_S


def _replay_space(tmp: Path) -> Path:
    data = yaml.safe_load((REPO / "snnsearch" / "testing" / "replay_mnist.yaml").read_text())
    data["fixed"]["table"] = str(REPO / "bench" / "replay_mnist.parquet")
    path = tmp / "replay.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _interrupt_after(results: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """SIGINT to this process (Ctrl-C) when the budget stopper has seen ``results`` results: a
    deterministic point mid-sweep. The engine's handler saves the state and returns 130."""
    seen: list[int] = []
    count = ComputeBudget.__call__

    def counting(self: ComputeBudget, trial_id: str, result: dict) -> bool:
        seen.append(1)
        if len(seen) == results:
            os.kill(os.getpid(), signal.SIGINT)
        return count(self, trial_id, result)

    monkeypatch.setattr(ComputeBudget, "__call__", counting)
    return seen


@pytest.mark.ray
@pytest.mark.slow
def test_budget_in_seconds_survives_resume_and_asha_rungs_are_seconds(
    ray_local: None, tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage, name = tmp_path / "ray", "cost"
    sweep_dir = storage / name
    common = ["--storage", str(storage), "--name", name, "--mlflow-uri", mlflow_uri]
    seen = _interrupt_after(8, monkeypatch)
    code = main("mnist", [
        *common, "--space", str(_replay_space(tmp_path)), "--samples", str(SAMPLES),
        "--sampler", "random", "--seed", "0", "--scheduler", "asha", "--concurrency", "1",
        "--max-epochs", "5", "--reduction-factor", str(ETA), "--time-attr", "cost",
        "--grace-seconds", str(GRACE), "--max-seconds", str(MAX_S),
        "--budget-seconds", str(BUDGET)])
    assert len(seen) >= 8 and code == 130, code
    monkeypatch.undo()
    first = pd.read_parquet(sweep_dir / "trials.parquet")
    assert 0 < first["time_total_s"].sum() < BUDGET / 2  # interrupted well before the budget
    assert main("mnist", [*common, "--resume"]) == 0

    trials = pd.read_parquet(sweep_dir / "trials.parquet")  # rows in trial order
    history = pd.read_parquet(sweep_dir / "history.parquet")
    spent = float(trials["time_total_s"].sum())  # each trial's cumulative recorded seconds
    last = trials.iloc[-1]
    # Stopped by the budget: at the first result that reached it, counting both runs.
    assert len(trials) < SAMPLES
    assert spent >= BUDGET
    assert spent - float(last["last/time_this_iter_s"]) < BUDGET, (spent, last["trial_id"])

    # ASHA decided at seconds milestones: every trial it stopped (not silent, not the one the
    # budget cut) stopped at the first result that crossed a rung (or max_s).
    stopped = trials[(trials["status"] == "stopped early") & (trials["trial_id"] !=
                                                             last["trial_id"])]
    assert len(stopped) >= 3, trials[["trial_id", "status", "time_total_s"]]
    for trial_id in stopped["trial_id"]:
        seconds = history[history["trial_id"] == trial_id].sort_values("epoch")["time_total_s"]
        before = float(seconds.iloc[-2]) if len(seconds) > 1 else 0.0
        assert any(before < m <= float(seconds.iloc[-1]) for m in MILESTONES), (
            trial_id, list(seconds))
    # Nothing ran on past max_s seconds: only a trial's last result may reach it.
    for _, seconds in history.groupby("trial_id")["time_total_s"]:
        assert (seconds.sort_values().iloc[:-1] < MAX_S).all(), list(seconds)


@pytest.mark.ray
@pytest.mark.slow
def test_budget_with_trials_side_by_side_ends_cleanly(
    ray_local: None, tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:
    """Two trials at a time: the budget stops a trial that may not have reported yet. The
    console table (Ray sorts finished trials by the metric) and the trial table cope."""
    storage = tmp_path / "ray"
    code = main("mnist", [
        "--storage", str(storage), "--name", "pair", "--mlflow-uri", mlflow_uri,
        "--space", str(_replay_space(tmp_path)), "--samples", str(SAMPLES), "--sampler",
        "random", "--seed", "1", "--concurrency", "2", "--max-epochs", "5",
        "--budget-seconds", "30"])
    assert code == 0, capsys.readouterr().err[-2000:]
    trials = pd.read_parquet(storage / "pair" / "trials.parquet")
    assert 30.0 <= trials["time_total_s"].sum() and len(trials) < SAMPLES
    unfinished = trials[trials["epochs_run"] < 5]
    assert set(unfinished["status"]) <= {"stopped early", "silent", "saturated"}, unfinished
