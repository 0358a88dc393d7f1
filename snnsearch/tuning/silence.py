"""Silent / saturated spiking networks: the verdict, a Ray Tune stopper, and trial outcomes.

Many random SNN configurations never make the output layer spike (or make it spike at every
step), so their accuracy is chance and every further epoch is wasted. Firmin et al. 2024
(Neurocomputing 609:128483) stopped 66-92% of evaluations this way, each about 22x cheaper than
a full one. Trainables report ``output_firing_rate`` (mean output spikes per neuron per step)
and ``silent_fraction`` (share of validation images with no output spike in any step) every
epoch; :class:`SilenceStopper` reads them on the driver and stops the trial.

The stopper also writes the reason into the result (``result["stop_reason"] = "silent"``). Ray
passes the same dict on to the callbacks and stores it as ``trial.last_result``
(``TuneController._process_trial_result``), so the reason reaches the MLflow callback, the
results table, :class:`~snnsearch.tuning.moasha.MultiObjectiveASHA` (which then keeps the trial
out of its rungs) and :class:`~snnsearch.tuning.pruned_optuna.PrunedOptunaSearch` (which tells
Optuna the trial was pruned and infeasible, not complete).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ray.tune.stopper import Stopper

from snnsearch.constants import OUTPUT_RATE, SILENT_FRACTION, STOP_REASON

SILENT = "silent"
SATURATED = "saturated"
EARLY_STOPPED = "early_stopped"
COMPLETED = "completed"
ERROR = "error"
NON_FINITE = "non_finite"

__all__ = [
    "COMPLETED",
    "EARLY_STOPPED",
    "ERROR",
    "NON_FINITE",
    "SATURATED",
    "SILENT",
    "SilenceStopper",
    "silence_verdict",
    "trial_outcome",
]


def _finite(value: Any) -> float | None:
    """``value`` as float, or None when absent or not a finite number."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def silence_verdict(
    metrics: Mapping[str, Any],
    *,
    silent_below: float = 1e-3,
    saturated_above: float = 0.9,
    max_silent_fraction: float = 0.9,
    rate_key: str = OUTPUT_RATE,
    silent_fraction_key: str = SILENT_FRACTION,
) -> str | None:
    """Classify one epoch's spike metrics as ``"silent"``, ``"saturated"`` or healthy (None).

    Silent: the output firing rate is below ``silent_below``, or more than
    ``max_silent_fraction`` of the samples got no output spike at all (a net can fire on a few
    images and still be useless). Saturated: the output rate is above ``saturated_above``, so
    every class neuron fires at nearly every step and the readout cannot tell classes apart.

    Args:
        metrics: one reported result.
        silent_below: rate threshold (spikes per neuron per step; I-LIF counts are not divided
            by D, so scale the saturation threshold for them).
        saturated_above: rate above which the output is saturated.
        max_silent_fraction: largest tolerated share of samples without an output spike.
        rate_key: key of the output firing rate.
        silent_fraction_key: key of the silent-sample share.

    Returns:
        ``"silent"``, ``"saturated"`` or None. A NaN metric gives no verdict (NaN is a
        training failure, not a spiking one).

    Raises:
        ValueError: when neither key is in ``metrics`` (the trainable does not report them).
    """
    if rate_key not in metrics and silent_fraction_key not in metrics:
        raise ValueError(
            f"result has neither {rate_key!r} nor {silent_fraction_key!r}: report them from the "
            "trainable or do not use silence pruning"
        )
    rate = _finite(metrics.get(rate_key))
    frac = _finite(metrics.get(silent_fraction_key))
    if (rate is not None and rate < silent_below) or (
        frac is not None and frac > max_silent_fraction
    ):
        return SILENT
    if rate is not None and rate > saturated_above:
        return SATURATED
    return None


def _has_spiking_output(result: Mapping[str, Any]) -> bool:
    """False for results of nets without a spiking output layer: ANN baselines report no spike
    metrics (depth) or the impossible pair rate 0 with no silent sample (classify's ``*_ann``
    models, whose monitors saw no spiking layer). The stopper skips those instead of raising
    mid-sweep or calling an ANN silent."""
    if OUTPUT_RATE not in result and SILENT_FRACTION not in result:
        return False
    rate, frac = _finite(result.get(OUTPUT_RATE)), _finite(result.get(SILENT_FRACTION))
    return not (rate == 0.0 and frac == 0.0)


class SilenceStopper(Stopper):
    """Stops trials whose output layer is silent or saturated, and records why.

    Use as ``tune.RunConfig(stop=SilenceStopper(...))`` (wrap with
    ``ray.tune.stopper.CombinedStopper`` to add other stoppers). The check starts once
    ``result[time_attr] >= check_from`` (after the first epoch by default) and is repeated on
    every later result, because a network can also die during training.

    Args:
        check_from: first value of ``time_attr`` at which to check.
        time_attr: progress key of the result.
        silent_below: see :func:`silence_verdict`.
        saturated_above: see :func:`silence_verdict`.
        max_silent_fraction: see :func:`silence_verdict`.
        reason_key: result key that receives the verdict.
    """

    def __init__(
        self,
        *,
        check_from: int = 1,
        time_attr: str = "training_iteration",
        silent_below: float = 1e-3,
        saturated_above: float = 0.9,
        max_silent_fraction: float = 0.9,
        reason_key: str = STOP_REASON,
    ) -> None:
        if check_from < 0:
            raise ValueError(f"check_from={check_from} must be >= 0")
        if not 0.0 <= max_silent_fraction <= 1.0:
            raise ValueError(f"max_silent_fraction={max_silent_fraction} must lie in [0, 1]")
        if saturated_above <= silent_below:
            raise ValueError(
                f"saturated_above={saturated_above} must exceed silent_below={silent_below}"
            )
        self._check_from = check_from
        self._time_attr = time_attr
        self._silent_below = silent_below
        self._saturated_above = saturated_above
        self._max_silent_fraction = max_silent_fraction
        self._reason_key = reason_key
        self._stopped: dict[str, str] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Return True to stop ``trial_id``; writes the verdict into ``result`` when it does."""
        progress = result.get(self._time_attr)
        if progress is None or progress < self._check_from or not _has_spiking_output(result):
            return False
        verdict = silence_verdict(
            result,
            silent_below=self._silent_below,
            saturated_above=self._saturated_above,
            max_silent_fraction=self._max_silent_fraction,
        )
        if verdict is None:
            return False
        result[self._reason_key] = verdict
        self._stopped[trial_id] = verdict
        return True

    def stop_all(self) -> bool:
        """Never ends the whole experiment: silence is a property of one configuration."""
        return False

    @property
    def stopped(self) -> dict[str, str]:
        """``{trial_id: "silent" | "saturated"}`` for every trial this stopper ended."""
        return dict(self._stopped)


def trial_outcome(
    result: Mapping[str, Any] | None,
    *,
    error: bool = False,
    time_attr: str = "training_iteration",
    max_t: int,
    metrics: tuple[str, ...] = (),
    reason_key: str = STOP_REASON,
) -> str:
    """Why a trial ended, from its last result: the one vocabulary for searcher and reports.

    Ray marks every ended trial ``done`` and hands searchers the same last result whether the
    trainable finished or a scheduler cut it short, so the budget is the only scheduler-agnostic
    signal: a trial that ended before ``max_t`` without a recorded reason was stopped early.

    Args:
        result: the trial's last (flattened) result, or None.
        error: the trial raised.
        time_attr: progress key.
        max_t: the full budget in ``time_attr`` units (the scheduler's ``max_t``).
        metrics: objective keys; missing ones mean the trial never reported (early stop),
            NaN/inf ones mean training diverged (``"non_finite"``).
        reason_key: key written by :class:`SilenceStopper` (or a trainable).

    Returns:
        One of ``"error"``, ``"silent"``, ``"saturated"`` (or any other recorded reason),
        ``"non_finite"``, ``"early_stopped"``, ``"completed"``.
    """
    if error:
        return ERROR
    if not result:
        return EARLY_STOPPED
    reason = result.get(reason_key)
    if isinstance(reason, str) and reason:
        return reason
    if any(m not in result for m in metrics):
        return EARLY_STOPPED
    if any(_finite(result[m]) is None for m in metrics):
        return NON_FINITE
    progress = _finite(result.get(time_attr))
    if progress is None or progress < max_t:
        return EARLY_STOPPED
    return COMPLETED
