"""Silent / saturated spiking networks: the verdict, a Ray Tune stopper, and trial outcomes.

Many random SNN configurations never make the output layer spike (or make it spike at every
step), so their accuracy is chance and every further epoch is wasted. Firmin et al. 2024
(Neurocomputing 609:128483) stopped 66-92% of evaluations this way, each about 22x cheaper than
a full one. :class:`SilenceStopper` reads these metrics on the driver and stops the trial:

* ``output_rate_norm``: mean output per neuron per step divided by the neuron's largest output
  per step (1 for binary spikes, D for I-LIF, whose outputs are integer counts 0..D). Both
  thresholds are judged on it, so one cut means the same for every neuron type. Results that
  only carry ``output_firing_rate`` are normalised with the trial config's ``neuron``/``D``.
* ``silent_fraction`` (classification): share of validation images with no output spike in
  any step.
* ``silent_layer_fraction`` (depth): share of spiking layers whose mean rate is below 1e-4.

The stopper also writes the reason into the result (``result["stop_reason"] = "silent"``). Ray
passes the same dict on to the callbacks and stores it as ``trial.last_result``
(``TuneController._process_trial_result``), so the reason reaches the MLflow callback, the
results table, :class:`~snnsearch.search.moasha.MultiObjectiveASHA` (which then keeps the trial
out of its rungs) and :class:`~snnsearch.search.pruned_optuna.PrunedOptunaSearch` (which tells
Optuna the trial was pruned and infeasible, not complete).

Whether a sweep uses the stopper by default is the task's declaration
(``register_task(output_spikes=...)`` in ``snnsearch.sweep.tasks``, resolved by the sweep
settings): only a task whose prediction is read from output spikes is judged by them. Depth
decodes membrane features, so a silent deep stage still predicts and the stopper is off there
unless ``--silence`` asks for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ray.tune.stopper import Stopper

from snnsearch.constants import (
    EPOCH,
    OUTPUT_RATE,
    OUTPUT_RATE_NORM,
    SILENT_FRACTION,
    SILENT_LAYER_FRACTION,
    STOP_REASON,
)

SILENT = "silent"
SATURATED = "saturated"
EARLY_STOPPED = "early_stopped"
COMPLETED = "completed"
ERROR = "error"
NON_FINITE = "non_finite"

_RATE_KEYS = (OUTPUT_RATE_NORM, OUTPUT_RATE)
_FRACTION_KEYS = (SILENT_FRACTION, SILENT_LAYER_FRACTION)

__all__ = [
    "COMPLETED",
    "EARLY_STOPPED",
    "ERROR",
    "NON_FINITE",
    "SATURATED",
    "SILENT",
    "SilenceStopper",
    "neuron_max_output",
    "normalized_output_rate",
    "progress_of",
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


def neuron_max_output(config: Mapping[str, Any] | None) -> int:
    """Largest output of one neuron per step for a trial config: ``D`` for I-LIF, else 1.

    Mirrors :attr:`snnsearch.snn.neurons.NeuronSpec.max_output` for flat trial configs (the
    ``config`` dict Ray puts into every result), without building the spec.
    """
    config = config or {}
    if config.get("neuron") == "ilif":
        try:
            return max(int(config.get("D", 4)), 1)  # NeuronSpec's default D is 4
        except (TypeError, ValueError):
            return 1
    return 1


def normalized_output_rate(
    metrics: Mapping[str, Any], config: Mapping[str, Any] | None = None
) -> float | None:
    """The output rate in [0, 1] of the neuron's maximum (see module docstring), or None.

    Args:
        metrics: one reported result; ``output_rate_norm`` is used when present.
        config: the trial config, used to normalise a bare ``output_firing_rate``; defaults
            to ``metrics["config"]`` (Ray adds it to every result).
    """
    if OUTPUT_RATE_NORM in metrics:
        return _finite(metrics[OUTPUT_RATE_NORM])
    raw = _finite(metrics.get(OUTPUT_RATE))
    if raw is None:
        return None
    if config is None:
        config = metrics.get("config") if isinstance(metrics.get("config"), Mapping) else None
    return raw / neuron_max_output(config)


def silence_verdict(
    metrics: Mapping[str, Any],
    *,
    silent_below: float = 1e-3,
    saturated_above: float = 0.9,
    max_silent_fraction: float = 0.9,
    config: Mapping[str, Any] | None = None,
) -> str | None:
    """Classify one epoch's spike metrics as ``"silent"``, ``"saturated"`` or healthy (None).

    Silent: the normalised output rate is below ``silent_below``, or more than
    ``max_silent_fraction`` of the images (classification) or of the spiking layers (depth)
    got no spike at all (a net can fire on a few images and still be useless). Saturated: the
    normalised output rate is above ``saturated_above``: every output neuron is at its maximum in
    nearly every step, so the readout cannot tell classes apart. An I-LIF D=8 readout at a raw
    count rate of 0.8 (0.1 of its maximum) is healthy.

    Args:
        metrics: one reported result.
        silent_below: normalised-rate threshold below which the output is silent.
        saturated_above: normalised rate above which the output is saturated.
        max_silent_fraction: largest tolerated share of silent images / layers.
        config: trial config for normalising a bare ``output_firing_rate`` (default:
            ``metrics["config"]``).

    Returns:
        ``"silent"``, ``"saturated"`` or None. A NaN metric gives no verdict (NaN is a
        training failure, not a spiking one).

    Raises:
        ValueError: when the result carries none of the spike metrics (the trainable does not
            report them).
    """
    if not any(k in metrics for k in (*_RATE_KEYS, *_FRACTION_KEYS)):
        raise ValueError(
            f"result has none of {[*_RATE_KEYS, *_FRACTION_KEYS]}: report them from the "
            "trainable or do not use silence pruning"
        )
    rate = normalized_output_rate(metrics, config)
    fracs = [f for f in (_finite(metrics.get(k)) for k in _FRACTION_KEYS) if f is not None]
    if (rate is not None and rate < silent_below) or any(f > max_silent_fraction for f in fracs):
        return SILENT
    if rate is not None and rate > saturated_above:
        return SATURATED
    return None


def _has_spiking_output(result: Mapping[str, Any]) -> bool:
    """False for results of nets without a spiking output layer: ANN baselines report no spike
    metrics (depth) or the impossible pair rate 0 with no silent sample (classify's ``*_ann``
    models, whose monitors saw no spiking layer). The stopper skips those instead of raising
    mid-sweep or calling an ANN silent."""
    if not any(k in result for k in (*_RATE_KEYS, *_FRACTION_KEYS)):
        return False
    rate = _finite(result.get(OUTPUT_RATE, result.get(OUTPUT_RATE_NORM)))
    fracs = [_finite(result.get(k)) for k in _FRACTION_KEYS if k in result]
    return not (rate == 0.0 and fracs and all(f == 0.0 for f in fracs))


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


def progress_of(result: Mapping[str, Any], time_attr: str = "training_iteration") -> float | None:
    """Epochs a trial has run, from one result.

    With the default ``time_attr`` the result's ``epoch`` is preferred when present: this
    package's trainables report once per epoch, and ``epoch`` continues from a checkpoint while
    Ray's ``training_iteration`` counts only the reports of the current run after a restore.
    Any other ``time_attr`` is read as is.
    """
    if time_attr == "training_iteration":
        epoch = _finite(result.get(EPOCH))
        if epoch is not None:
            return epoch
    return _finite(result.get(time_attr))


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
    signal: a trial that ended before its budget (:func:`planned_budget`: its ``epochs``, at most
    ``max_t``) without a recorded reason was stopped early.

    Args:
        result: the trial's last (flattened) result, or None.
        error: the trial raised.
        time_attr: progress key (see :func:`progress_of`: ``epoch`` wins for the default).
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
    progress = progress_of(result, time_attr)
    if progress is None or progress < planned_budget(result, time_attr, max_t):
        return EARLY_STOPPED
    return COMPLETED


def planned_budget(result: Mapping[str, Any], time_attr: str, max_t: int) -> float:
    """The epochs this trial was to run: its ``epochs`` config when the result carries it
    (a grid cell may train fewer than ``max_t``), capped by ``max_t``; else ``max_t``. The same
    budget the trial table's status uses (``tracking.summary.trial_status``)."""
    if time_attr != "training_iteration":
        return max_t
    config = result.get("config")
    planned = config.get("epochs") if isinstance(config, Mapping) else result.get("config/epochs")
    planned = _finite(planned)
    return max_t if planned is None else min(float(max_t), planned)
