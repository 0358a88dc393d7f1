"""Reaching the cluster: the real CLI (``python sweeps/mnist.py --smoke``, as ``ray job submit``
would run it) against a wrong address, and against a token-authenticated head with no token or
a wrong one. Each must end in one ``error:`` line naming the cause, not a minute-long hang.

The head is a ``ray start --head --block`` this module starts in its own process group and temp
dir, with a private HOME so nobody's ``~/.ray/auth_token`` is read or written; it is stopped by
its own PIDs (never ``ray stop``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from snnsearch.testing.sweeps import free_port, pids_with_arg, stop_process_group

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 45


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    # PYTHONPATH: the CLI under test is this checkout's, whatever is installed.
    return {**env, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO),
            "MLFLOW_DISABLE_TELEMETRY": "true"}


@contextlib.contextmanager
def _token_head(token: str) -> Iterator[str]:
    """A one-node token-auth Ray head; yields its GCS address."""
    temp = Path(tempfile.mkdtemp(prefix="snt", dir="/tmp"))  # short: Ray's socket paths
    home = temp / "home"
    home.mkdir()
    port = free_port()
    env = {**_clean_env(home), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    cmd = ["ray", "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
           "--include-dashboard=false", f"--temp-dir={temp / 'ray'}"]
    log = open(temp / "head.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_process_group(proc, timeout=3)  # `ray start --block` lingers ~30 s on SIGTERM
        for pid in pids_with_arg(str(temp / "ray")):  # daemons that left the group
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _sweep_cli(tmp: Path, env: dict[str, str], data_root: Path) -> subprocess.Popen:
    # Valid data, so the driver's preflight passes and the cluster connection is what fails.
    cmd = [sys.executable, str(REPO / "sweeps" / "mnist.py"), "--smoke", "--data-dir",
           str(data_root), "--storage", str(tmp / "ray"), "--name", "access",
           "--mlflow-uri", f"sqlite:///{tmp / 'mlflow.db'}"]
    return subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"the CLI hung for {TIMEOUT_S} s instead of failing") from None
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return proc.returncode, lines[-1] if lines else ""


@pytest.mark.ray
def test_wrong_cluster_address_fails_fast_with_one_line(tmp_path: Path, data_root: Path) -> None:
    env = {**_clean_env(tmp_path), "RAY_ADDRESS": f"127.0.0.1:{free_port()}"}
    start = time.monotonic()
    code, last = _finish(_sweep_cli(tmp_path, env, data_root))
    assert code == 2, last
    assert last.startswith("error:") and env["RAY_ADDRESS"] in last and "RAY_ADDRESS" in last
    assert time.monotonic() - start < 30
    assert not (tmp_path / "mlflow.db").exists()  # failed before the MLflow parent run


@pytest.mark.ray
@pytest.mark.slow
def test_missing_or_wrong_ray_token_is_refused_with_one_line(
    tmp_path: Path, data_root: Path
) -> None:
    token = secrets.token_hex(32)
    with _token_head(token) as address:
        home = tmp_path / "home"
        home.mkdir()
        # Ray retries a refused GCS handshake ~1/s for 20-60 s by default; 5 tries tell as much.
        base = {**_clean_env(home), "RAY_ADDRESS": address, "RAY_gcs_server_port_wait_time_s": "5"}
        # Positive control: the head is up and accepts its own token.
        probe = "import ray; ray.init(); print(ray.cluster_resources()['CPU'])"
        ok = subprocess.Popen(
            [sys.executable, "-c", probe],
            env={**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token},
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for sub in ("missing", "wrong"):
            (tmp_path / sub).mkdir()
        wrong = {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        runs = {"missing": _sweep_cli(tmp_path / "missing", base, data_root),
                "wrong": _sweep_cli(tmp_path / "wrong", wrong, data_root)}
        results = {name: _finish(proc) for name, proc in runs.items()}
        out, _ = ok.communicate(timeout=TIMEOUT_S)
    assert out.strip() == "1.0"
    for name, (code, last) in results.items():
        assert code == 2, (name, last)
        assert last.startswith("error:") and address in last and "token" in last, (name, last)
