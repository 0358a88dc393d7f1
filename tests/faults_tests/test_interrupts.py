"""Two drivers on one sweep, then Ctrl-C, then the printed ``--resume`` command: the real CLI in
subprocesses, joined to this session's Ray through RAY_ADDRESS (as under ``ray job submit``).

- a second driver on the same ``--name`` is refused (exit 2) with the first one's host and PID,
  and the first one's sweep is untouched;
- SIGINT stops the first driver with exit 130: its running trials are ``interrupted`` in
  ``trials.parquet``, their MLflow children and the parent are KILLED, and the console prints
  the exact command that continues the sweep;
- that command completes the sweep: every trial completed, one child per trial, parent FINISHED.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from snnsearch.testing.sweeps import slow_quadratic_space, stop_process_group, sweep_runs
from snnsearch.tracking import mlflow_logging as M

REPO = Path(__file__).resolve().parents[2]
SAMPLES, EPOCHS = 4, 3


def _wait(predicate, proc: subprocess.Popen, log: Path, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{what} not seen in time: {log.read_text()[-2000:]}"
        time.sleep(0.5)


@pytest.mark.ray
@pytest.mark.slow
def test_second_driver_refused_then_ctrl_c_and_resume_are_clean(
    ray_local: None, tmp_path: Path, mlflow_uri: str
) -> None:
    import ray

    storage, name = tmp_path / "ray", "interrupted"
    sweep_dir = storage / name
    space = slow_quadratic_space(tmp_path, 1.5)
    args = ["--space", str(space), "--storage", str(storage), "--name", name,
            "--samples", str(SAMPLES), "--max-epochs", str(EPOCHS), "--scheduler", "fifo",
            "--concurrency", "2", "--mlflow-uri", mlflow_uri]
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    cli = [sys.executable, str(REPO / "sweeps" / "mnist.py")]
    log = tmp_path / "first.log"
    first = subprocess.Popen([*cli, *args], env=env, stdout=open(log, "wb"),
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: (sweep_dir / ".snnsearch.lock").exists(), first, log, "the lock")
        second = subprocess.run([*cli, *args], env=env, capture_output=True, text=True,
                                timeout=180, check=False)
        err = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(err) == 1, second.stderr[-2000:]
        assert f"in use by another driver (host {socket.gethostname()}, PID {first.pid}" in err[0]

        _wait(lambda: any(sweep_dir.glob("*/result.json")) and any(
            p.stat().st_size for p in sweep_dir.glob("*/result.json")), first, log, "a result")
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=180) == 130, log.read_text()[-3000:]
    finally:
        stop_process_group(first, timeout=5)
    output = log.read_text()
    assert "Traceback" not in output
    resume = output.split("continue it with:\n", 1)[1].splitlines()[0].strip()
    assert shlex.split(resume)[1:] == [str(REPO / "sweeps" / "mnist.py"), "--storage",
                                       str(storage), "--name", name, "--resume"]
    assert not (sweep_dir / ".snnsearch.lock").exists()

    table = pd.read_parquet(sweep_dir / "trials.parquet")
    cut = set(table.loc[table["status"] == "interrupted", "trial_id"])
    assert cut and (table["status"].isin(["interrupted", "completed"])).all(), table
    parent_id = (sweep_dir / M.PARENT_ID_FILE).read_text().strip()
    parents, children = sweep_runs(mlflow_uri, parent_run_id=parent_id)
    assert parents[0].info.status == "KILLED"
    for child in children:
        if child.data.tags[M.TRIAL_TAG] in cut:
            assert child.info.status == "KILLED"
            assert child.data.tags[M.STATUS_TAG] == "interrupted"

    done = subprocess.run([sys.executable, *shlex.split(resume)[1:]], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    table = pd.read_parquet(sweep_dir / "trials.parquet")
    assert len(table) == SAMPLES and (table["status"] == "completed").all(), table
    parents, children = sweep_runs(mlflow_uri, parent_run_id=parent_id)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    ids = [c.data.tags[M.TRIAL_TAG] for c in children]
    assert len(ids) == len(set(ids)) == SAMPLES  # the cut trials' children were reopened
    assert all(c.info.status == "FINISHED" for c in children)
