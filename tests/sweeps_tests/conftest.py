"""Fixtures for the sweep-engine tests: one MLflow sqlite store per session (creating one runs
MLflow's schema migrations, ≈6 s on 2 cores), and a writable MNIST/FashionMNIST root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from snnsearch.testing.sweeps import classification_root


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sqlite tracking URI shared by the tests of this folder (each uses its own runs)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """``<tmp>/MNIST/raw/*.gz`` and ``<tmp>/FashionMNIST/raw/*.gz`` linked to the shared data."""
    return classification_root(tmp_path_factory.mktemp("data"), shared_data)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One private local Ray for the sweep tests (``ray.init`` costs 3-4 s).

    ``address="local"`` because a bare ``ray.init()`` attaches to any Ray cluster running on the
    machine (found through its gcs_server process), e.g. another job's or the head started by
    test_job_submit.py, and then refuses ``num_cpus``. Reuses a session that is already up and
    shuts down only the one it started.
    """
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()
