"""OptunaSearch that tells Optuna the truth about trials the scheduler or the stopper cut short.

Ray's ``OptunaSearch.on_trial_complete`` tells every trial with a value as COMPLETE. Ray hands
searchers the same last result (flagged ``done``) whether the trainable finished or ASHA /
a stopper ended it (``TuneController._process_trial_result`` and ``stop_trial``), so a trial
stopped after one epoch enters the study as a finished trial with its one-epoch accuracy, and
TPE then models that truncated number as the configuration's quality.

:class:`PrunedOptunaSearch` classifies each ended trial with
:func:`~snnsearch.search.silence.trial_outcome` and tells Optuna:

========================  ====================================================================
outcome                   told to Optuna
========================  ====================================================================
completed (reached max_t) COMPLETE with the final value(s), as Ray does
early_stopped             PRUNED; single-objective: the value at the stopping epoch is reported
                          as an intermediate value first, so Optuna stores it as the pruned
                          trial's value and TPE ranks pruned trials by (epoch reached, value).
                          Multi-objective (see below): COMPLETE with the truncated values and
                          the violated constraint ``unfinished``
silent / saturated        as early_stopped, plus the constraint ``silence = 1.0`` (violated):
                          TPE 5.x puts infeasible trials after all feasible ones, so silent
                          regions are penalised hardest
non_finite (NaN loss)     PRUNED (not FAIL: TPE ignores FAIL trials, so a diverging region
                          would be proposed again)
error                     FAIL
========================  ====================================================================

Pruned trials in multi-objective studies carry their progress. Optuna refuses
``Trial.report`` there, so TPE scores every pruned trial alike and fills its "good" group with
the lowest-numbered ones, and NSGA-II never sees non-COMPLETE trials at all. Instead a stopped
trial gets the constraint ``unfinished = 1 - epochs_run / max_t`` (> 0, violated) and, when
its truncated vector is finite, is told COMPLETE with it. Both samplers order infeasible trials
by their summed violation (TPE's ``_split_trials``, NSGA-II's constrained domination), so every
finished trial ranks first, then stopped trials by how far they got (a trial cut at rung 2
above one cut at rung 0), and silent ones (``silence`` adds 1.0) last. ``study.best_trials``
skips infeasible trials, so none of them reaches Optuna's front.

User constraints (``constraints=["energy_mj<=0.5"]``, the CLI's ``--constraint``) are set on
every ended trial as ``constraint:<spec>`` = relative violation (<= 0 feasible).

Every told trial gets the user attribute ``stop_reason``; a stopped trial's truncated vector is
also kept in the user attribute ``truncated_values`` for reports.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from snnsearch.constants import STOP_REASON
from snnsearch.search.constraints import Constraint, parse_constraints
from snnsearch.search.silence import (
    COMPLETED,
    ERROR,
    NON_FINITE,
    SATURATED,
    SILENT,
    progress_of,
    trial_outcome,
)

logger = logging.getLogger(__name__)

SILENCE_CONSTRAINT = "silence"
UNFINISHED_CONSTRAINT = "unfinished"
CONSTRAINT_PREFIX = "constraint:"

__all__ = ["CONSTRAINT_PREFIX", "SILENCE_CONSTRAINT", "UNFINISHED_CONSTRAINT", "AskTellGridSampler",
           "PrunedOptunaSearch"]


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler without its ``study.stop()`` once every point was told: Optuna
    allows that call only inside ``Study.optimize``, which Ray never runs (it asks and tells), so
    it raised on the last trial of every grid sweep (a warning, the trial's state still stored).
    Ray's ``num_samples`` (the grid's size) ends the sweep instead."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


class PrunedOptunaSearch(OptunaSearch):
    """Ray Tune's OptunaSearch, but early-stopped and silent trials reach Optuna as PRUNED.

    Args:
        space: as for ``OptunaSearch`` (define-by-run function or distributions dict).
        metric: objective name, or a list of names for a multi-objective study.
        mode: ``"min"``/``"max"`` or a list matching ``metric``.
        max_t: full budget in ``time_attr`` units (the scheduler's ``max_t`` / the epochs a
            trial runs when nothing stops it). A trial that ends earlier without error was
            stopped early.
        time_attr: progress key of the results.
        reason_key: result key a stopper writes its reason into.
        constraints: hard constraints (``"energy_mj<=0.5"`` or :class:`Constraint`); each ended
            trial gets the Optuna constraint ``constraint:<spec>`` = its relative violation
            (<= 0 feasible), so TPE and NSGA-II rank violators after every feasible trial.
        tell_epoch: multi-fidelity feedback (BOHB-style, issue 22): every trial that reached
            this epoch is told COMPLETE with its values *at* this epoch (normally the first
            rung, which every trial reaches), feasible unless silent or a user constraint is
            violated; a trial ended before it is told as without this option. The sampler
            then models one fidelity from every trial instead of finished trials first and
            stopped ones as infeasible. None (default): the table above.
        **kwargs: passed to ``OptunaSearch`` (``sampler``, ``seed``, ``points_to_evaluate``,
            ``study_name``, ``storage``, ``evaluated_rewards``).
    """

    def __init__(
        self,
        space: Any = None,
        *,
        metric: str | list[str],
        mode: str | list[str],
        max_t: int,
        time_attr: str = "training_iteration",
        reason_key: str = STOP_REASON,
        constraints: Sequence[str | Constraint] = (),
        tell_epoch: int | None = None,
        **kwargs: Any,
    ) -> None:
        if tell_epoch is not None and tell_epoch < 1:
            raise ValueError(f"tell_epoch={tell_epoch} must be an epoch >= 1 (or None)")
        if isinstance(metric, list) != isinstance(mode, list) or (
            isinstance(metric, list) and len(metric) != len(mode)
        ):
            raise ValueError(
                f"metric {metric!r} and mode {mode!r} must both be str or equal-length lists"
            )
        if max_t <= 0:
            raise ValueError(f"max_t={max_t} must be positive (the epochs of a full trial)")
        super().__init__(space, metric=metric, mode=mode, **kwargs)
        self._max_t = max_t
        self._time_attr = time_attr
        self._reason_key = reason_key
        self._constraints = parse_constraints(constraints)
        self._tell_epoch = tell_epoch
        self._at_tell_epoch: dict[str, dict] = {}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Keep a multi-objective metric list when TuneConfig names one of its metrics.

        Ray's version would overwrite the list with TuneConfig's single metric and silently
        turn the study single-objective.
        """
        if isinstance(self._metric, list) and metric is not None:
            if metric not in self._metric:
                raise ValueError(
                    f"TuneConfig metric {metric!r} is not among the searcher's objectives "
                    f"{self._metric}: pass one of them or leave it unset"
                )
            metric, mode = None, None
        return super().set_search_properties(metric, mode, config, **spec)

    def _metrics(self) -> list[str]:
        metric = self._metric
        if metric is None:
            raise RuntimeError("PrunedOptunaSearch has no metric; pass metric= when building it")
        return list(metric) if isinstance(metric, list) else [metric]

    def _values(self, result: dict | None) -> list[float] | None:
        """The objective values in ``result`` when all are finite numbers, else None."""
        values = [(result or {}).get(m) for m in self._metrics()]
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return [float(v) for v in values]
        return None

    def _set_user_constraints(self, ot_trial: Any, result: dict | None) -> None:
        for c in self._constraints:
            ot_trial.set_constraint(f"{CONSTRAINT_PREFIX}{c}", c.violation((result or {}).get(c.metric)))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Keep the result at ``tell_epoch`` (the searcher is told every result Ray does not
        stop on; the result that triggered a stop arrives in ``on_trial_complete``)."""
        self._keep_tell_epoch(trial_id, result)
        super().on_trial_result(trial_id, result)

    def _keep_tell_epoch(self, trial_id: str, result: dict | None) -> None:
        if self._tell_epoch is None or not result or trial_id in self._at_tell_epoch:
            return
        epoch = progress_of(result)  # epochs, whatever the scheduler's time attribute
        if epoch is not None and epoch >= self._tell_epoch:
            self._at_tell_epoch[trial_id] = dict(result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Tell Optuna COMPLETE, PRUNED or FAIL according to :func:`trial_outcome`."""
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        if not error:
            self._keep_tell_epoch(trial_id, result)
        at_epoch = self._at_tell_epoch.pop(trial_id, None)
        if at_epoch is not None and not error and self._tell_at_epoch(trial_id, result, at_epoch):
            return
        outcome = trial_outcome(
            result,
            error=error,
            time_attr=self._time_attr,
            max_t=self._max_t,
            metrics=tuple(self._metrics()),
            reason_key=self._reason_key,
        )
        ot_trial = self._ot_trials[trial_id]
        ot_trial.set_user_attr(STOP_REASON, outcome)
        if outcome != ERROR:
            self._set_user_constraints(ot_trial, result)
        if outcome == COMPLETED:
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        values = None
        if outcome == ERROR:
            state = TrialState.FAIL
        else:
            state = TrialState.PRUNED
            self._record_truncated(ot_trial, result or {})
            if outcome in (SILENT, SATURATED):
                ot_trial.set_constraint(SILENCE_CONSTRAINT, 1.0)
            if isinstance(self._metric, list):
                # Multi-objective: no intermediate values, so progress travels as a violated
                # constraint (share of the budget not run) and the truncated vector as values.
                ot_trial.set_constraint(UNFINISHED_CONSTRAINT, self._unfinished(result))
                values = self._values(result)
                if values is not None:
                    state = TrialState.COMPLETE  # infeasible, so never on Optuna's front
        study = self._ot_study
        # The study exists once suggest() ran, which Ray does before any trial can end.
        assert study is not None
        try:
            study.tell(ot_trial, values, state=state)
        except Exception as exc:  # noqa: BLE001 - Ray's own tell() is guarded the same way.
            logger.warning("Optuna refused trial %s as %s: %s", trial_id, state.name, exc)
        self._completed_trials.add(trial_id)

    def _tell_at_epoch(self, trial_id: str, last: dict | None, at_epoch: dict) -> bool:
        """``tell_epoch`` feedback: COMPLETE with the values at that epoch. False (told
        nothing) when they are not finite numbers or the trial diverged later."""
        values = self._values(at_epoch)
        outcome = trial_outcome(last, time_attr=self._time_attr, max_t=self._max_t,
                                metrics=tuple(self._metrics()), reason_key=self._reason_key)
        if values is None or outcome == NON_FINITE:
            return False
        ot_trial = self._ot_trials[trial_id]
        ot_trial.set_user_attr(STOP_REASON, outcome)
        ot_trial.set_user_attr("told_epoch", self._tell_epoch)
        self._set_user_constraints(ot_trial, at_epoch)
        if outcome in (SILENT, SATURATED):
            ot_trial.set_constraint(SILENCE_CONSTRAINT, 1.0)
        study = self._ot_study
        assert study is not None
        try:
            study.tell(ot_trial, values if len(values) > 1 else values[0],
                       state=TrialState.COMPLETE)
        except Exception as exc:  # noqa: BLE001 - as Ray's own tell()
            logger.warning("Optuna refused trial %s: %s", trial_id, exc)
        self._completed_trials.add(trial_id)
        return True

    def _unfinished(self, result: dict | None) -> float:
        """Share of the budget a stopped trial did not run, in (0, 1]: its progress as a
        constraint violation (Optuna sorts infeasible trials by total violation)."""
        done = progress_of(result or {}, self._time_attr)
        if done is None:
            return 1.0
        return float(min(max(1.0 - done / self._max_t, 1.0 / (10 * self._max_t)), 1.0))

    def _record_truncated(self, ot_trial: Any, result: dict) -> None:
        """Keep the value(s) at the stopping point without letting Optuna treat them as final."""
        values = [result.get(m) for m in self._metrics()]
        finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if len(finite) != len(values):
            return
        ot_trial.set_user_attr("truncated_values", [float(v) for v in finite])
        if isinstance(self._metric, list):
            return  # Optuna refuses Trial.report (intermediate values) in multi-objective studies.
        step = result.get(self._time_attr)
        if isinstance(step, (int, float)):
            # Ray does not pass the result that triggered STOP to on_trial_result, so this step
            # is normally new; if it is not, Optuna keeps the first value and warns.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*step.*already reported")
                ot_trial.report(float(finite[0]), int(step))
