"""``ray job submit --working-dir . -- python sweeps/mnist.py --smoke ...`` against a Ray head
this test starts on loopback with token authentication: the job's runs reach MLflow, and the
default relative sqlite URI lands in the sweep storage, not in the job's temporary working
directory. (Two trials: the smoke sweeps themselves, ASHA included, are tested in-process in
test_smoke_sweeps.py.)"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from snnsearch.testing.sweeps import free_ports, pids_with_arg, stop_ray_head, sweep_runs
from snnsearch.tracking import mlflow_logging as M

REPO = Path(__file__).resolve().parents[2]


def _head_command(temp_dir: Path, ports: list[int]) -> list[str]:
    flags = ("--port", "--dashboard-port", "--ray-client-server-port", "--node-manager-port",
             "--object-manager-port", "--metrics-export-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port")
    by_flag = dict(zip(flags, ports, strict=True))
    low = 30000 + (os.getpid() % 500) * 40
    return ["ray", "start", "--head", "--block", "--temp-dir", str(temp_dir), "--num-cpus", "2",
            "--node-ip-address", "127.0.0.1", "--include-dashboard", "true",
            "--dashboard-host", "127.0.0.1", "--min-worker-port", str(low),
            "--max-worker-port", str(low + 39),
            *[str(x) for pair in by_flag.items() for x in pair]]


def _wait_for_jobs_api(address: str, env: dict, head: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert head.poll() is None, log.read_text()[-3000:]
        probe = subprocess.run(["ray", "job", "list", "--address", address], env=env,
                               capture_output=True, text=True, timeout=60, check=False)
        if probe.returncode == 0:
            return
        time.sleep(1)
    raise TimeoutError(f"Ray jobs API at {address} not up: {log.read_text()[-2000:]}")


@pytest.mark.ray
@pytest.mark.slow
def test_ray_job_submit_smoke_sweep(tmp_path: Path, data_root: Path) -> None:
    temp_dir = Path(f"/tmp/snn_job_{secrets.token_hex(4)}")  # short: Ray's socket paths ≤ 107
    kept_uri = f"sqlite:///{tmp_path / 'ray' / 'mlflow.db'}"
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    ports = free_ports(9)  # distinct: gcs, dashboard, then the other components
    address = f"http://127.0.0.1:{ports[1]}"
    log = tmp_path / "head.log"
    head = subprocess.Popen(_head_command(temp_dir, ports), env=env, cwd=REPO,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        _wait_for_jobs_api(address, env, head, log)
        no_token = {**env, "RAY_AUTH_TOKEN": "", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "none")}
        refused = subprocess.run(["ray", "job", "list", "--address", address], env=no_token,
                                 capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode != 0  # the head really enforces the token
        # The README's command: the job runs in Ray's temporary copy of --working-dir, and the
        # tracking URI is the default relative sqlite one, which must land in the storage.
        sweep = ["python", "sweeps/mnist.py", "--smoke", "--samples", "2",
                 "--storage", str(tmp_path / "ray"), "--name", "job-mnist",
                 "--mlflow-uri", "sqlite:///mlflow.db", "--data-dir", str(data_root)]
        job = subprocess.run(["ray", "job", "submit", "--address", address, "--working-dir",
                              str(REPO), "--", *sweep],
                             env=env, capture_output=True, text=True, timeout=420, check=False)
        output = job.stdout + job.stderr
        assert job.returncode == 0 and "succeeded" in output, output[-4000:]
        assert "Sweep summary:" in output
        assert f"MLflow {kept_uri}" in output  # the absolute URI, printed at the start
    finally:
        stop_ray_head(head)
        for pid in pids_with_arg(str(temp_dir)):  # anything of this head that outlived it
            os.kill(pid, 9)
        shutil.rmtree(temp_dir, ignore_errors=True)  # the head's session folder: nothing in /tmp

    sweep_dir = tmp_path / "ray" / "job-mnist"
    table = pd.read_parquet(sweep_dir / "trials.parquet")
    assert len(table) == 2 and (table["status"] != "errored").all()
    parent_id = (sweep_dir / M.PARENT_ID_FILE).read_text().strip()
    parents, children = sweep_runs(kept_uri, parent_run_id=parent_id)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and len(children) == 2
    assert all({"val_acc", "energy_mj", "epoch_time_s"} <= set(c.data.metrics) for c in children)
