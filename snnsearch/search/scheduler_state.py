"""Scheduler state that survives ``Tuner.restore`` (a killed driver, ``--resume``).

Ray Tune 2.60 saves trial states, the searcher and the callbacks with every experiment snapshot
(``TuneController.save_to_dir``) but not the scheduler: ``_scheduler_alg`` is left out of the
controller state, and ``Tuner.restore`` rebuilds the scheduler as it was pickled at the start of
the sweep (``tuner.pkl``). ASHA's and MO-ASHA's rungs are then empty after a resume, so a resumed
trial is judged against the trials that start after the crash only, and can run past a rung at
which the interrupted sweep would have stopped it; Ray users report this as lost rung state.

:class:`SchedulerStateCallback` closes the gap. Tune calls every callback's ``get_state`` while it
writes a snapshot into the driver's staging folder, after the trial states and the searcher state
and before the upload to the storage; this callback then writes the scheduler's rung state as JSON to
``scheduler-state.json`` there (atomically; JSON, not pickle, so loading it runs no code) and
returns None. It must come before
:class:`~snnsearch.sweep.state_hmac.StateSigner` in the callback list, so the file is signed
with the snapshot it matches, and ``--resume`` verifies it with the other state files before
anything is unpickled. On the first step of a restored sweep (before any result is processed)
the callback loads the file back into the scheduler it holds; ``tuner.pkl`` pickles
``TuneConfig`` and ``RunConfig`` together, so that is the scheduler Ray schedules with.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ray.tune import Callback

__all__ = ["STATE_FILE", "SchedulerStateCallback", "dump_state", "load_state"]

log = logging.getLogger(__name__)
STATE_FILE = "scheduler-state.json"


def dump_state(scheduler: Any) -> dict[str, Any] | None:
    """JSON-ready rung state of Ray's ASHA or of a scheduler with its own ``state_dict``
    (MO-ASHA); None for stateless schedulers (FIFO)."""
    from ray.tune.schedulers import AsyncHyperBandScheduler

    if hasattr(scheduler, "state_dict"):
        return scheduler.state_dict()
    if isinstance(scheduler, AsyncHyperBandScheduler):
        brackets = scheduler._brackets
        return {
            "kind": "asha", "num_stopped": scheduler._num_stopped,
            "counter": getattr(scheduler, "_counter", 0),
            "trial_info": {t: brackets.index(b) for t, b in scheduler._trial_info.items()},
            "brackets": [[[m, {t: float(v) for t, v in rec.items()}] for m, rec in b._rungs]
                         for b in brackets],
        }
    return None


def load_state(scheduler: Any, state: dict[str, Any]) -> None:
    """Put a :func:`dump_state` state back into a scheduler built with the same settings."""
    if hasattr(scheduler, "load_state_dict"):
        scheduler.load_state_dict(state)
        return
    brackets = scheduler._brackets
    if len(state["brackets"]) != len(brackets):
        raise ValueError("saved scheduler state has another number of brackets")
    for b, rungs in zip(brackets, state["brackets"], strict=True):
        b._rungs = [(m, dict(rec)) for m, rec in rungs]
    scheduler._counter = state.get("counter", 0)
    scheduler._trial_info = {t: brackets[i] for t, i in state["trial_info"].items()}
    scheduler._num_stopped = state["num_stopped"]


class SchedulerStateCallback(Callback):
    """Saves the scheduler's rung state (recorded values per rung, trial-to-bracket map, counters,
    generator) with every experiment snapshot and puts it back when a sweep is restored.

    Args:
        scheduler: the scheduler passed to ``TuneConfig``: Ray's ``ASHAScheduler`` and
            :class:`~snnsearch.search.moasha.MultiObjectiveASHA` have state (see
            :func:`dump_state`); FIFO has none.
    """

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self._staging: str | None = None
        self._checked = False

    def __getstate__(self) -> dict[str, Any]:
        # tuner.pkl: a restored driver finds its own staging folder and checks it once.
        return {**self.__dict__, "_staging": None, "_checked": False}

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        """Learn the staging folder; on the first step, restore a saved state if there is one."""
        storage = getattr(trials[0], "storage", None) if trials else None
        if self._staging is None and storage is not None:
            self._staging = getattr(storage, "experiment_driver_staging_path", None)
        if self._checked or storage is None:
            return
        self._checked = True
        data = self._read_saved(storage)
        if data is not None:
            load_state(self.scheduler, json.loads(data))
            log.info("restored the scheduler state saved with the last snapshot")

    def _read_saved(self, storage: Any) -> bytes | None:
        """The saved state from the sweep directory on the storage (what --resume verified),
        else from the staging folder; None on a fresh sweep."""
        fs, root = storage.storage_filesystem, storage.experiment_fs_path
        try:
            with fs.open_input_stream(f"{root}/{STATE_FILE}") as stream:
                return stream.readall()
        except (FileNotFoundError, OSError):
            pass
        local = Path(self._staging or "") / STATE_FILE
        return local.read_bytes() if self._staging and local.is_file() else None

    def get_state(self) -> None:
        """Write the scheduler state beside the snapshot; None: no callback-state file."""
        state = dump_state(self.scheduler)
        if self._staging is None or state is None:
            return None
        path = Path(self._staging) / STATE_FILE
        tmp = path.with_name(f"tmp-{STATE_FILE}")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)
        return None
