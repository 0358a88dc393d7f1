"""Fixtures for the fault tests: the fault trainable shipped to Ray workers by value, a space
file builder, a real ``mlflow server`` this test can kill, and bounded MLflow HTTP retries.

MLflow's client retries a refused connection 7 times with exponential backoff (minutes); the
tests bound it the way docs/reliability.md tells users to, so a dead server costs seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from snnsearch.testing.sweeps import _wait_http, free_port, stop_process_group

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def bounded_mlflow_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite tracking store for the session (its schema migration costs ≈6 s); every test
    reads back only its own sweep's runs, through the parent run id."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def fault_trainable() -> str:
    """``module:function`` of the fault trainable (``snnsearch.testing.trainables``)."""
    return "snnsearch.testing.trainables:faulty"


@pytest.fixture
def write_space(tmp_path: Path) -> Callable[..., Path]:
    """Writes a space YAML (trainable, fixed, space, tune) into ``tmp_path`` and returns it."""

    def write(trainable: str, *, fixed: dict[str, Any], space: dict[str, Any],
              tune: dict[str, Any], name: str = "space.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"trainable": trainable, "experiment": "faults",
                                        "fixed": fixed, "space": space, "tune": tune}))
        return path

    return write


class KillableMlflowServer:
    """A lean ``mlflow server`` in its own process group, stoppable mid-test."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        cmd = [sys.executable, "-m", "mlflow", "server", "--workers", "1", "--host", "127.0.0.1",
               "--port", str(self.port), "--backend-store-uri",
               f"sqlite:///{workdir / 'server.db'}", "--default-artifact-root",
               str(workdir / "artifacts")]
        self._log = open(workdir / "mlflow_server.log", "wb")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        _wait_http(f"{self.uri}/health", self.proc, timeout=90)

    def stop(self) -> None:
        stop_process_group(self.proc)
        self._log.close()


@pytest.fixture
def killable_mlflow(tmp_path: Path) -> Iterator[KillableMlflowServer]:
    server = KillableMlflowServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()
