"""Fixtures for the fault tests: the fault trainable (snnsearch.testing.trainables), a space
file builder, a real ``mlflow server`` this test can kill, and bounded MLflow HTTP retries.

MLflow's client retries a refused connection 7 times with exponential backoff (minutes); the
tests bound it the way docs/reliability.md tells users to, so a dead server costs seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from snnsearch.testing.sweeps import MlflowServer

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


@pytest.fixture
def killable_mlflow(tmp_path: Path) -> Iterator[MlflowServer]:
    """An ``mlflow server`` the test may kill mid-sweep (artifacts in a local folder)."""
    server = MlflowServer(tmp_path, artifact_root=tmp_path / "artifacts")
    try:
        yield server
    finally:
        server.stop()
