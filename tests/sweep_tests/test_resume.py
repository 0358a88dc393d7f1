"""Resume: kill the sweep driver mid-sweep (SIGKILL), run again with ``--resume``; finished trials
are not rerun, the sweep finishes, MLflow keeps one parent and one child per trial."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
SAMPLES, EPOCHS = 4, 3


def _result_lines(sweep_dir: Path) -> dict[str, int]:
    """trial_id → number of results Ray wrote for it (grows if the trial is rerun)."""
    return {p.parent.name.split("_")[1]: len(p.read_text().splitlines())
            for p in sweep_dir.glob("*/result.json")}


@pytest.mark.ray
@pytest.mark.slow
def test_resume_after_the_driver_is_killed(
    ray_local: None, tmp_path: Path, mlflow_uri: str
) -> None:
    import ray

    space = slow_quadratic_space(tmp_path, 1.0)
    args = ["--space", str(space), "--storage", str(tmp_path / "ray"), "--name", "resumable",
            "--samples", str(SAMPLES), "--max-epochs", str(EPOCHS), "--scheduler", "fifo",
            "--concurrency", "2", "--mlflow-uri", mlflow_uri]
    sweep_dir = tmp_path / "ray" / "resumable"
    # The driver joins this session's Ray through RAY_ADDRESS, as it would under `ray job submit`.
    # A snapshot every second (Ray's default "auto" period is >= 10 s): the kill must land
    # while the stored state holds finished and unfinished trials.
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
           "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    driver = subprocess.Popen(
        [sys.executable, str(REPO / "sweeps" / "mnist.py"), *args], env=env,
        stdout=open(tmp_path / "driver.log", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 150
        while not recorded_finished(sweep_dir):
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.5)
    finally:
        stop_process_group(driver, timeout=0)  # SIGTERM then SIGKILL: a crashed driver
    finished_before = recorded_finished(sweep_dir)
    assert 0 < len(finished_before) < SAMPLES
    lines_before = _result_lines(sweep_dir)

    assert main("quadratic", [*args, "--resume"]) == 0

    parent_id = (sweep_dir / M.PARENT_ID_FILE).read_text().strip()
    parents, children = sweep_runs(mlflow_uri, parent_run_id=parent_id)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.tags.get("snnsearch.resumed") == "true"
    assert sorted(c.data.tags[M.TRIAL_TAG] for c in children) == sorted(
        {c.data.tags[M.TRIAL_TAG] for c in children}
    )  # one child per trial, no duplicates
    assert len(children) == SAMPLES
    assert all(c.data.tags[M.STATUS_TAG] == "completed" for c in children)
    lines_after = _result_lines(sweep_dir)
    assert all(lines_after[t] == lines_before[t] == EPOCHS for t in finished_before)  # not rerun
    client = M.make_client(mlflow_uri)
    for child in children:  # epochs retrained after the crash are not logged twice
        history = client.get_metric_history(child.info.run_id, "val_acc")
        assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1))
    table = pd.read_parquet(sweep_dir / "trials.parquet")
    assert len(table) == SAMPLES and (table["epochs_run"] == EPOCHS).all()
