"""Payloads for the storage-boundary tests: files a hostile writer of the storage could leave,
each a pickle whose unpickling would create a marker folder."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path


class Payload:
    """Pickles into ``os.mkdir(marker)``: unpickling it anywhere leaves the marker behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.marker,))


def payload_bytes(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker), protocol=2)


def experiment_state(marker: Path) -> str:
    """An ``experiment_state-*.json`` as Ray's ``TuneFunctionEncoder`` writes an object JSON cannot
    hold: a hex cloudpickle blob, which ``ExperimentAnalysis`` expands (runs) on load."""
    blob = {"_type": "CLOUDPICKLE_FALLBACK", "value": payload_bytes(marker).hex()}
    return json.dumps({"trial_data": blob, "runner_data": {}})


def one_error_line(err: str) -> str:
    """The single ``error:`` line of a refusal (asserts there is exactly one, no traceback)."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]
