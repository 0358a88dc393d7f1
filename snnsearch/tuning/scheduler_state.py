"""Scheduler state that survives ``Tuner.restore`` (a killed driver, ``--resume``).

Ray Tune 2.60 saves trial states, the searcher and the callbacks with every experiment snapshot
(``TuneController.save_to_dir``) but not the scheduler: ``_scheduler_alg`` is left out of the
controller state, and ``Tuner.restore`` rebuilds the scheduler as it was pickled at the start of
the sweep (``tuner.pkl``). ASHA's and MO-ASHA's rungs are then empty after a resume, so a resumed
trial is judged against the trials that start after the crash only, and can run past a rung at
which the interrupted sweep would have stopped it; Ray users report this as lost rung state.

:class:`SchedulerStateCallback` closes the gap with Ray's own mechanism: a callback's
``get_state`` is written into every snapshot, next to the trial states it matches, and
``set_state`` runs on restore before the restored trials are re-added. The callback holds the
scheduler object it was built with; ``tuner.pkl`` pickles ``TuneConfig`` and ``RunConfig`` in one
pickle, so after ``Tuner.restore`` the callback's scheduler is the one Ray schedules with.
"""

from __future__ import annotations

import copy
from typing import Any

from ray.tune import Callback

__all__ = ["SchedulerStateCallback"]


class SchedulerStateCallback(Callback):
    """Snapshots ``scheduler.__dict__`` (rungs, trial-to-bracket map, counters, generator) with
    every experiment checkpoint and puts it back on restore.

    Args:
        scheduler: the scheduler passed to ``TuneConfig`` (Ray's ``ASHAScheduler``,
            :class:`~snnsearch.tuning.moasha.MultiObjectiveASHA`, or any scheduler whose state
            lives in its attributes).
    """

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def get_state(self) -> dict[str, Any] | None:
        """A deep copy of the scheduler's attributes (Ray pickles it into the snapshot)."""
        return {"scheduler_state": copy.deepcopy(self.scheduler.__dict__)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the attributes saved by :meth:`get_state`."""
        saved = state.get("scheduler_state")
        if saved:
            self.scheduler.__dict__.update(saved)
