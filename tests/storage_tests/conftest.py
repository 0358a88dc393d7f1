"""Fixtures for the storage-boundary tests: crafted sweep directories (``_crafted.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _crafted import experiment_state, payload_bytes


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "code_ran"


@pytest.fixture
def crafted_sweep(tmp_path: Path, marker: Path) -> Callable[..., Path]:
    """A sweep folder holding ``sweep.json`` (metric/mode), a crafted experiment state,
    ``tuner.pkl`` and ``searcher-state`` payloads, and no ``trials.parquet``."""

    def make(name: str = "crafted", settings: dict[str, Any] | None = None) -> Path:
        sweep = tmp_path / "storage" / name
        sweep.mkdir(parents=True)
        (sweep / "sweep.json").write_text(json.dumps(
            {"name": name, "metric": "val_acc", "mode": "max", **(settings or {})}))
        (sweep / "experiment_state-2026-12-06_00-00-00.json").write_text(
            experiment_state(marker))
        (sweep / "tuner.pkl").write_bytes(payload_bytes(marker))
        (sweep / "searcher-state-2026-12-06_00-00-00.pkl").write_bytes(payload_bytes(marker))
        return sweep

    return make
