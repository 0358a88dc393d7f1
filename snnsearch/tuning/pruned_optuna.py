"""OptunaSearch that tells Optuna the truth about trials the scheduler or the stopper cut short.

Ray's ``OptunaSearch.on_trial_complete`` tells every trial with a value as COMPLETE. Ray hands
searchers the same last result (flagged ``done``) whether the trainable finished or ASHA /
a stopper ended it (``TuneController._process_trial_result`` and ``stop_trial``), so a trial
stopped after one epoch enters the study as a finished trial with its one-epoch accuracy, and
TPE then models that truncated number as the configuration's quality.

:class:`PrunedOptunaSearch` classifies each ended trial with
:func:`~snnsearch.tuning.silence.trial_outcome` and tells Optuna:

========================  ====================================================================
outcome                   told to Optuna
========================  ====================================================================
completed (reached max_t) COMPLETE with the final value(s), as Ray does
early_stopped             PRUNED; single-objective: the value at the stopping epoch is reported
                          as an intermediate value first, so Optuna stores it as the pruned
                          trial's value and TPE ranks pruned trials by (epoch reached, value)
silent / saturated        PRUNED plus the constraint ``silence = 1.0`` (violated): TPE 5.x puts
                          infeasible trials after all feasible ones, so silent regions are
                          penalised hardest
non_finite (NaN loss)     PRUNED (not FAIL: TPE ignores FAIL trials, so a diverging region
                          would be proposed again)
error                     FAIL
========================  ====================================================================

Every told trial gets the user attribute ``stop_reason``. Multi-objective studies cannot use
``Trial.report`` (Optuna raises NotImplementedError), but ``study.tell(state=PRUNED)`` works and
multi-objective TPE treats pruned trials as "above" (bad) examples; the truncated vector is kept
in the user attribute ``truncated_values`` for reports.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from snnsearch.constants import STOP_REASON
from snnsearch.tuning.silence import (
    COMPLETED,
    ERROR,
    SATURATED,
    SILENT,
    trial_outcome,
)

logger = logging.getLogger(__name__)

SILENCE_CONSTRAINT = "silence"

__all__ = ["SILENCE_CONSTRAINT", "PrunedOptunaSearch"]


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
        **kwargs: Any,
    ) -> None:
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

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Tell Optuna COMPLETE, PRUNED or FAIL according to :func:`trial_outcome`."""
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            super().on_trial_complete(trial_id, result=result, error=error)
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
        if outcome == COMPLETED:
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        if outcome == ERROR:
            state = TrialState.FAIL
        else:
            state = TrialState.PRUNED
            self._record_truncated(ot_trial, result or {})
            if outcome in (SILENT, SATURATED):
                ot_trial.set_constraint(SILENCE_CONSTRAINT, 1.0)
        study = self._ot_study
        # The study exists once suggest() ran, which Ray does before any trial can end.
        assert study is not None
        try:
            study.tell(ot_trial, None, state=state)
        except Exception as exc:  # noqa: BLE001 - Ray's own tell() is guarded the same way.
            logger.warning("Optuna refused trial %s as %s: %s", trial_id, state.name, exc)
        self._completed_trials.add(trial_id)

    def _record_truncated(self, ot_trial: Any, result: dict) -> None:
        """Keep the value(s) at the stopping point without letting Optuna treat them as final."""
        values = [result.get(m) for m in self._metrics()]
        finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if len(finite) != len(values):
            return
        ot_trial.set_user_attr("truncated_values", [float(v) for v in finite])
        if isinstance(self._metric, list):
            return  # Trial.report raises NotImplementedError in multi-objective studies.
        step = result.get(self._time_attr)
        if isinstance(step, (int, float)):
            # Ray does not pass the result that triggered STOP to on_trial_result, so this step
            # is normally new; if it is not, Optuna keeps the first value and warns.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*step.*already reported")
                ot_trial.report(float(finite[0]), int(step))
