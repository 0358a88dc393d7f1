"""Smoke run of ``bench/driver_throughput.py`` at tiny sizes: the script runs its floor, MLflow
and server-restart arms on a real ``Cluster`` and a real ``mlflow server`` and reads back 0 lost
metric values (the timings are the benchmark's business, not asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.ray
@pytest.mark.slow
def test_driver_bench_runs_and_loses_no_metric(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    env = {**os.environ, "SNNSEARCH_STATE_KEY": "snnsearch-tests-only",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "driver_throughput.py"), "--trials", "4",
         "--reports", "2", "--concurrency", "2", "--nodes", "1", "--down-s", "2",
         "--arms", "floor,mlflow,restart", "--out", str(out)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    rows = {row["arm"]: row for row in json.loads(out.read_text())}
    assert set(rows) == {"floor", "mlflow", "restart"}
    assert rows["mlflow"]["metrics_lost"] == 0 and rows["restart"]["metrics_lost"] == 0
    assert all(row["results"] == 8 and row["wall_s"] > 0 for row in rows.values())
    assert "restart arm: server back" in done.stdout
