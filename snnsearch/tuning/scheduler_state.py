"""Scheduler state that survives ``Tuner.restore`` (a killed driver, ``--resume``).

Ray Tune 2.60 saves trial states, the searcher and the callbacks with every experiment snapshot
(``TuneController.save_to_dir``) but not the scheduler: ``_scheduler_alg`` is left out of the
controller state, and ``Tuner.restore`` rebuilds the scheduler as it was pickled at the start of
the sweep (``tuner.pkl``). ASHA's and MO-ASHA's rungs are then empty after a resume, so a resumed
trial is judged against the trials that start after the crash only, and can run past a rung at
which the interrupted sweep would have stopped it; Ray users report this as lost rung state.

:class:`SchedulerStateCallback` closes the gap. Tune calls every callback's ``get_state`` while it
writes a snapshot into the driver's staging folder, after the trial states and the searcher state
and before the upload to the storage; this callback then writes the scheduler's attributes to
``scheduler-state.pkl`` there (atomically) and returns None. It must come before
:class:`~snnsearch.tuning.state_hmac.StateSigner` in the callback list, so the file is signed
with the snapshot it matches, and ``--resume`` verifies it with the other state files before
anything is unpickled. On the first step of a restored sweep (before any result is processed)
the callback loads the file back into the scheduler it holds; ``tuner.pkl`` pickles
``TuneConfig`` and ``RunConfig`` together, so that is the scheduler Ray schedules with.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
from pathlib import Path
from typing import Any

from ray.tune import Callback

__all__ = ["STATE_FILE", "SchedulerStateCallback"]

log = logging.getLogger(__name__)
STATE_FILE = "scheduler-state.pkl"


class SchedulerStateCallback(Callback):
    """Saves ``scheduler.__dict__`` (rungs, trial-to-bracket map, counters, generator) with every
    experiment snapshot and puts it back when a sweep is restored.

    Args:
        scheduler: the scheduler passed to ``TuneConfig`` (Ray's ``ASHAScheduler``,
            :class:`~snnsearch.tuning.moasha.MultiObjectiveASHA`, or any scheduler whose state
            lives in its attributes).
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
            # Written by this sweep's driver and HMAC-verified with the other state files
            # before Tuner.restore (tuning/state_hmac.py), like Ray's own pickled state.
            self.scheduler.__dict__.update(pickle.loads(data))
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
        if self._staging is None:
            return None
        path = Path(self._staging) / STATE_FILE
        tmp = path.with_name(f"tmp-{STATE_FILE}")
        with open(tmp, "wb") as fh:
            pickle.dump(copy.deepcopy(self.scheduler.__dict__), fh)
        os.replace(tmp, path)
        return None
