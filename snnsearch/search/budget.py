"""A sweep budget in compute seconds: a Ray Tune stopper that ends the sweep once the trials
have spent it.

``--samples`` and ``--max-epochs`` count trials and epochs, but an SNN epoch at T=8 or with
512-wide layers costs many times one at T=1, so what a sweep really spends is compute seconds.
:class:`ComputeBudget` reads each trial's ``time_total_s`` (Ray's cumulative seconds of the
trial, which the trainable restores from its checkpoint on a retry or a resume; a trainable may
report its own ``time_this_iter_s``, as the replay trainable reports the recorded cost of an
epoch, and Ray then adds that instead of the wall time) and sums the latest value of every
trial. ``stop_all`` turns True once the sum reaches the budget: Ray then marks the searcher
finished and stops every live trial in the same loop step (``TuneController.
_stop_experiment_if_needed``), so no result past the one that reached the budget is processed
with concurrency 1, and with more trials in flight each is cut where it stands.

Resume: Ray keeps the stopper in the experiment snapshot (``TuneController.__getstate__`` keeps
``_stopper``; ``resume`` puts the snapshot's back), so ``Tuner.restore`` continues with the
seconds already spent, not with a fresh count. A trial resumed from an older checkpoint reports
a ``time_total_s`` below what was already counted for it; the count keeps the larger value (the
seconds were spent even if their epochs are trained again), so a resume never frees budget.

Use it first in a ``ray.tune.stopper.CombinedStopper``: that ORs its stoppers with ``any``,
which skips the later ones once one says stop, and this one never stops a single trial, so it
sees every result whatever the others decide (``sweep/tuner.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from ray.tune.stopper import Stopper

log = logging.getLogger(__name__)

# Ray's cumulative per-trial seconds (ray.air.constants.TIME_TOTAL_S): the progress key of
# cost-aware schedulers (``--time-attr cost``) and what the budget sums.
COST_ATTR = "time_total_s"
# ``--time-attr`` choices → the result key the schedulers count progress in. ``epoch`` names
# Ray's ``training_iteration``, which ASHA and MO-ASHA read as the result's ``epoch`` (it
# continues from a checkpoint; ``search/schedulers.py``, ``silence.progress_of``).
TIME_ATTRS: dict[str, str] = {"epoch": "training_iteration", "cost": COST_ATTR}

__all__ = ["COST_ATTR", "TIME_ATTRS", "ComputeBudget"]


class ComputeBudget(Stopper):
    """Ends the sweep once the trials' summed compute seconds reach ``budget_s``.

    Each trial counts once, at the largest ``time_attr`` value it reported (its cumulative
    seconds), however many results it sent.

    Args:
        budget_s: seconds the whole sweep may spend (finite, > 0).
        time_attr: the cumulative per-trial seconds key of a result.
    """

    def __init__(self, *, budget_s: float, time_attr: str = COST_ATTR) -> None:
        budget_s = float(budget_s)
        if not (math.isfinite(budget_s) and budget_s > 0):
            raise ValueError(f"budget_s={budget_s} must be a finite number of seconds > 0")
        self._budget_s = budget_s
        self._time_attr = time_attr
        self._spent: dict[str, float] = {}
        self._total = 0.0
        self._announced = False

    def __call__(self, trial_id: str, result: Mapping[str, Any]) -> bool:
        """Counts the result's cumulative seconds; never stops one trial alone (``stop_all``
        ends them all)."""
        try:
            seconds = float(result.get(self._time_attr))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        if not math.isfinite(seconds):
            return False
        before = self._spent.get(trial_id, 0.0)
        if seconds > before:
            self._spent[trial_id] = seconds
            self._total += seconds - before
        return False

    def stop_all(self) -> bool:
        """True once the summed seconds reach the budget (said once in the log)."""
        done = self._total >= self._budget_s
        if done and not self._announced:
            self._announced = True
            log.warning("compute budget spent: %.1f of %.1f s over %d trials; stopping the sweep",
                        self._total, self._budget_s, len(self._spent))
        return done

    @property
    def budget_s(self) -> float:
        """The sweep's budget in seconds."""
        return self._budget_s

    @property
    def spent_s(self) -> float:
        """Seconds spent so far: the sum over trials of their latest cumulative seconds."""
        return self._total

    @property
    def per_trial(self) -> dict[str, float]:
        """``{trial_id: seconds counted}``."""
        return dict(self._spent)
