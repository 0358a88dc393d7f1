"""Helpers for sweep-engine tests: data roots, MLflow lookups, and processes the test owns.

Every process started here is stopped by its own PID (or process group, which it created with
``start_new_session``); nothing here runs ``ray stop`` or kills by name, because other users'
Ray and MLflow processes share the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

QUADRATIC_SPACE = Path(__file__).with_name("quadratic.yaml")


def slow_quadratic_space(tmp: Path, sleep_s: float) -> Path:
    """The quadratic space with ``sleep_s`` per epoch, written to ``tmp/slow.yaml``: slow enough
    for a test to kill or interrupt the driver between trials."""
    import yaml

    data = yaml.safe_load(QUADRATIC_SPACE.read_text())
    data["fixed"]["sleep_s"] = sleep_s
    path = tmp / "slow.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def recorded_finished(sweep_dir: Path) -> set[str]:
    """Trials that Ray's latest experiment snapshot in ``sweep_dir`` records as TERMINATED."""
    snapshots = sorted(sweep_dir.glob("experiment_state-*.json"))
    if not snapshots:
        return set()
    try:
        state = json.loads(snapshots[-1].read_text())
    except json.JSONDecodeError:  # caught mid-write
        return set()
    trials = [json.loads(entry[0]) for entry in state["trial_data"]]
    return {t["trial_id"] for t in trials if t["status"] == "TERMINATED"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now: all sockets stay bound until
    every port is chosen (one :func:`free_port` after another can return the same port twice,
    which made a Ray head refuse to start: two components on one port)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def classification_root(tmp: Path, shared_data: Path) -> Path:
    """A writable dataset root whose MNIST/FashionMNIST ``raw/*.gz`` link to the shared files
    (torchvision extracts next to them, so the read-only originals cannot be used directly)."""
    for name in ("MNIST", "FashionMNIST"):
        raw = tmp / name / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for gz in sorted((shared_data / name / "raw").glob("*.gz")):
            link = raw / gz.name
            if not link.exists():
                link.symlink_to(gz)
    return tmp


def sweep_runs(
    tracking_uri: str, *, experiment: str | None = None, parent_run_id: str | None = None
) -> tuple[list[Any], list[Any]]:
    """(parent runs, child runs), split on the ``mlflow.parentRunId`` tag, of an experiment or
    of the experiment holding ``parent_run_id`` (then only that sweep's children)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if parent_run_id is not None:
        experiment_id = client.get_run(parent_run_id).info.experiment_id
    else:
        found = client.get_experiment_by_name(str(experiment))
        if found is None:
            return [], []
        experiment_id = found.experiment_id
    runs = client.search_runs([experiment_id], max_results=10000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    if parent_run_id is not None:
        parents = [r for r in parents if r.info.run_id == parent_run_id]
        children = [r for r in children if r.data.tags["mlflow.parentRunId"] == parent_run_id]
    return parents, children


def stop_process_group(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL, the process group ``proc`` leads (started in a new session)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


def stop_ray_head(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Stops a ``ray start --head --block`` process this test started.

    SIGTERM goes to the ``ray start`` process alone: with ``--block`` it then shuts down the GCS,
    raylet and dashboard it launched, in order (signalling the whole group at once makes it wait
    on its children). Whatever is left in its process group afterwards gets SIGKILL.
    """
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    stop_process_group(proc, timeout=0)


def pids_with_arg(marker: str) -> list[int]:
    """PIDs whose command line contains ``marker`` (a unique temp dir this test created)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            if marker in cmdline.decode(errors="ignore"):
                pids.append(int(entry.name))
    return pids


class MlflowServer:
    """A lean ``mlflow server`` on a free loopback port, in its own process group so a test can
    stop (kill) it mid-sweep; ``artifact_root``: a local folder for artifacts instead of the
    server's proxied ``mlflow-artifacts:`` store; ``port``: a fixed port (a restart on the
    same port and store looks to clients like a server that came back)."""

    def __init__(self, workdir: Path, *, artifact_root: Path | None = None,
                 port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        cmd = [sys.executable, "-m", "mlflow", "server", "--workers", "1", "--host", "127.0.0.1",
               "--port", str(self.port), "--backend-store-uri",
               f"sqlite:///{workdir / 'server.db'}"]
        if artifact_root is not None:
            cmd += ["--default-artifact-root", str(artifact_root)]
        self._log = open(workdir / "mlflow_server.log", "ab")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_http(f"{self.uri}/health", self.proc, timeout=90)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop_process_group(self.proc)
        self._log.close()


@contextlib.contextmanager
def mlflow_server(workdir: Path) -> Iterator[str]:
    """A lean ``mlflow server`` on a free loopback port; yields its URI, stops it afterwards."""
    server = MlflowServer(workdir)
    try:
        yield server.uri
    finally:
        server.stop()


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"{url} not up after {timeout:.0f} s")
