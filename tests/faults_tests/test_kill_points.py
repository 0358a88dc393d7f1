"""``kill -9`` of the driver at every stage of a sweep's life, then a plain rerun (where nothing
ran) or ``--resume``: the sweep completes with its original fixed values, no duplicate and no
lost completed trial, and one MLflow parent run.

The real CLI (``sweeps/mnist.py``) runs in subprocesses joined to this session's Ray (as under
``ray job submit``). Stages the driver's own code passes through are hit with the
``SNNSEARCH_KILL_AT`` hook (snnsearch/sweep/recovery.py); stages inside ``fit()`` by watching
files appear (Ray's first experiment snapshot; a trial's first result). One sweep is killed at
every stage in turn, so a later stage also shows that an earlier recovery left a sound sweep.
The MNIST test kills a real-data sweep after ``tuner.pkl`` (the stage where ``--resume`` used
to lose every fixed value and send trials to download MNIST into ``~/.cache``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from snnsearch.testing.sweeps import (
    recorded_finished,
    slow_quadratic_space,
    stop_process_group,
    sweep_runs,
)
from snnsearch.tracking import mlflow_logging as M

REPO = Path(__file__).resolve().parents[2]
SAMPLES, EPOCHS = 4, 2


def _drive(args: list[str], env: dict[str, str], log: Path, *, kill_at: str | None = None,
           kill_when: Callable[[], bool] | None = None, timeout: float = 400) -> int:
    """Runs the CLI; ``kill_at``: the hook's stage; ``kill_when``: SIGKILL once it holds."""
    env = {**env, **({"SNNSEARCH_KILL_AT": kill_at} if kill_at else {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(REPO / "sweeps" / "mnist.py"), *args],
                                env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if kill_when is not None and kill_when():
                os.kill(proc.pid, signal.SIGKILL)  # the driver alone, as `kill -9 <pid>`
                break
            time.sleep(0.2)
        return proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        stop_process_group(proc, timeout=5)


def _parents(mlflow_uri: str, experiment: str, name: str) -> list:
    parents, _ = sweep_runs(mlflow_uri, experiment=experiment)
    return [p for p in parents if p.data.tags.get(M.SWEEP_TAG) == name]


def _first_result(sweep_dir: Path) -> bool:
    return any(p.stat().st_size for p in sweep_dir.glob("*/result.json"))


@pytest.mark.ray
@pytest.mark.slow
def test_a_sweep_killed_at_every_stage_completes_with_nothing_lost(
    ray_local: None, tmp_path: Path, mlflow_uri: str
) -> None:
    import ray

    storage, name = tmp_path / "storage", "killed"
    sweep_dir = storage / name
    data = tmp_path / "data"
    data.mkdir()
    space = slow_quadratic_space(tmp_path, 1.0)
    args = ["--space", str(space), "--storage", str(storage), "--name", name,
            "--samples", str(SAMPLES), "--max-epochs", str(EPOCHS), "--scheduler", "fifo",
            "--concurrency", "2", "--mlflow-uri", mlflow_uri, "--data-dir", str(data)]
    resume = ["--storage", str(storage), "--name", name, "--resume"]
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    log = tmp_path / "driver.log"

    # 1. Before sweep.json: the parent run exists (RUNNING), nothing else but a stale lock.
    assert _drive(args, env, log, kill_at="before-sweep-json") == -9, log.read_text()[-3000:]
    assert not (sweep_dir / "sweep.json").exists()
    assert [p.info.status for p in _parents(mlflow_uri, "quadratic", name)] == ["RUNNING"]
    first_parent = (sweep_dir / M.PARENT_ID_FILE).read_text().strip()

    # 2. A plain rerun (nothing ran) is accepted; killed after tuner.pkl, before any snapshot.
    assert _drive(args, env, log, kill_at="after-tuner") == -9, log.read_text()[-3000:]
    assert (sweep_dir / "tuner.pkl").exists()
    assert not list(sweep_dir.glob("experiment_state-*.json"))

    # 3. --resume of that start; killed as soon as Ray's first experiment snapshot exists.
    assert _drive(resume, env, log, kill_when=lambda: any(
        sweep_dir.glob("experiment_state-*.json"))) == -9, log.read_text()[-3000:]

    # 4. --resume; killed mid-trial, once a trial has reported its first epoch.
    assert _drive(resume, env, log, kill_when=lambda: _first_result(sweep_dir)) == -9, \
        log.read_text()[-3000:]
    assert _first_result(sweep_dir)

    # 5. --resume; killed after the trial table, while the report is being written.
    assert _drive(resume, env, log, kill_at="before-report") == -9, log.read_text()[-3000:]
    finished = recorded_finished(sweep_dir)
    assert len(finished) == SAMPLES
    assert (sweep_dir / "trials.parquet").exists()

    # 6. --resume completes.
    assert _drive(resume, env, log) == 0, log.read_text()[-3000:]
    output = log.read_text()
    assert "Traceback" not in output, output[-3000:]

    table = pd.read_parquet(sweep_dir / "trials.parquet")
    assert len(table) == SAMPLES and table["trial_id"].is_unique, table
    assert (table["status"] == "completed").all(), table
    assert set(table["trial_id"]) == finished  # none lost, none re-run as a new trial
    for params in sweep_dir.glob("*/params.json"):  # every trial ran with the fixed values
        config = json.loads(params.read_text())
        assert config["sleep_s"] == 1.0 and config["data_dir"] == str(data), config
    assert len(list(sweep_dir.glob("*/params.json"))) == SAMPLES  # no stray trial folders

    parents = _parents(mlflow_uri, "quadratic", name)
    assert [p.info.run_id for p in parents] == [first_parent]  # one parent, reused throughout
    assert parents[0].info.status == "FINISHED"
    _, children = sweep_runs(mlflow_uri, parent_run_id=first_parent)
    ids = sorted(c.data.tags[M.TRIAL_TAG] for c in children)
    assert ids == sorted(table["trial_id"]), ids  # one child per trial, no duplicate
    assert all(c.info.status == "FINISHED" for c in children)
    assert (sweep_dir / "report.html").exists()
    assert not (sweep_dir / ".snnsearch.lock").exists()


@pytest.mark.ray
@pytest.mark.slow
def test_mnist_killed_after_tuner_pkl_resumes_on_the_real_data(
    ray_local: None, tmp_path: Path, mlflow_uri: str, mnist_root: Path
) -> None:
    import ray

    storage, name = tmp_path / "storage", "mnist-killed"
    sweep_dir = storage / name
    home = tmp_path / "home"  # a trial that lost data_dir would create ~/.cache/snnsearch here
    home.mkdir()
    args = ["--smoke", "--samples", "2", "--max-epochs", "1", "--concurrency", "2", "--no-silence",
            "--storage", str(storage), "--name", name, "--mlflow-uri", mlflow_uri,
            "--data-dir", str(mnist_root)]
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
           "HOME": str(home), "SNNSEARCH_STATE_KEY": "kill-points-test"}
    token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if token.is_file():  # the session's Ray wants its token, which lived in the real HOME
        env["RAY_AUTH_TOKEN_PATH"] = str(token)
    log = tmp_path / "driver.log"
    assert _drive(args, env, log, kill_at="after-tuner") == -9, log.read_text()[-3000:]
    assert (sweep_dir / "tuner.pkl").exists()

    resume = ["--storage", str(storage), "--name", name, "--resume"]
    assert _drive(resume, env, log) == 0, log.read_text()[-3000:]
    table = pd.read_parquet(sweep_dir / "trials.parquet")
    assert len(table) == 2 and (table["status"] == "completed").all(), table
    assert table["best_val_acc"].max() > 0.2, table  # trained on MNIST, not on nothing
    for params in sweep_dir.glob("*/params.json"):
        assert json.loads(params.read_text())["data_dir"] == str(mnist_root)
    assert not (home / ".cache" / "snnsearch").exists()  # no trial went to download MNIST
    parents = _parents(mlflow_uri, "mnist", name)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


@pytest.mark.ray
def test_a_start_that_fails_before_any_trial_leaves_nothing_that_blocks_the_name(
    ray_local: None, tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after Ray started and before any trial reported (as Optuna's OverflowError on a
    NaN range did) clears what the start wrote; the corrected rerun is not refused."""
    from ray import tune

    from snnsearch.sweep.cli import main
    from snnsearch.testing.sweeps import QUADRATIC_SPACE

    storage, name = tmp_path / "storage", "failed-start"
    args = ["--space", str(QUADRATIC_SPACE), "--storage", str(storage), "--name", name,
            "--samples", "2", "--max-epochs", "1", "--scheduler", "fifo",
            "--mlflow-uri", mlflow_uri]
    real_fit = tune.Tuner.fit

    def crash(self: tune.Tuner) -> None:
        raise OverflowError("cannot convert float NaN to integer")

    monkeypatch.setattr(tune.Tuner, "fit", crash)
    with pytest.raises(OverflowError):
        main("mnist", args)
    leftovers = sorted(p.name for p in (storage / name).iterdir()) if (
        storage / name).exists() else []
    assert not [f for f in leftovers if f.endswith((".pkl", ".json"))], leftovers
    monkeypatch.setattr(tune.Tuner, "fit", real_fit)
    assert main("mnist", args) == 0
    table = pd.read_parquet(storage / name / "trials.parquet")
    assert len(table) == 2 and (table["status"] == "completed").all()
    statuses = sorted(p.info.status for p in _parents(mlflow_uri, "quadratic", name))
    assert statuses == ["FAILED", "FINISHED"]  # the failed start's parent says why; no RUNNING
