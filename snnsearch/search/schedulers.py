"""Trial schedulers by name (``--scheduler``).

A scheduler is one registered factory ``(settings: SchedulerSettings) -> TrialScheduler``; the
multi-objective ASHA and silent-network schedulers plug in the same way. Factories leave
``metric``/``mode`` unset on single-objective schedulers: Ray takes them from ``TuneConfig`` and
refuses a scheduler that was already given its own (``tune.py`` "already instantiated").
A factory that needs more than one objective reads ``settings.objectives`` and may set them itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from snnsearch.registry import Registry

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler


@dataclasses.dataclass(frozen=True, kw_only=True)
class SchedulerSettings:
    """What any scheduler factory may need.

    Args:
        metric: objective name (also in ``TuneConfig``).
        mode: "min" or "max".
        max_t: the most a trial may run, in ``time_attr`` units (epochs; seconds with
            ``time_total_s``, the sweep's ``--time-attr cost``).
        grace_period: what every trial gets before it can be stopped (``time_attr`` units).
        reduction_factor: ASHA's η: keep the top 1/η at each rung.
        time_attr: the result key that counts progress; one report per epoch makes
            ``training_iteration`` the epoch count (read as the result's ``epoch``);
            ``time_total_s`` counts each trial's cumulative compute seconds.
        objectives: ``((metric, mode), ...)`` for multi-objective schedulers.
        seed: the sweep seed, for schedulers that draw random numbers.
        options: extra keyword arguments from the space file's ``tune.scheduler_options``.
    """

    metric: str
    mode: str
    max_t: float
    grace_period: float = 1
    reduction_factor: float = 3.0
    time_attr: str = "training_iteration"
    objectives: tuple[tuple[str, str], ...] = ()
    seed: int | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


SchedulerFactory = Callable[[SchedulerSettings], "TrialScheduler"]
SCHEDULERS: Registry[SchedulerFactory] = Registry("scheduler")


@SCHEDULERS.register("asha")
def _asha(settings: SchedulerSettings) -> TrialScheduler:
    from ray.tune.schedulers import ASHAScheduler

    from snnsearch.constants import EPOCH

    if settings.grace_period > settings.max_t:
        raise ValueError(
            f"--grace {settings.grace_period} exceeds --max-epochs {settings.max_t}; "
            "lower --grace or raise --max-epochs"
        )
    return ASHAScheduler(
        # Progress in epochs: training_iteration restarts after Tuner.restore, epoch continues
        # from the checkpoint (every trainable here reports it once per epoch).
        time_attr=EPOCH if settings.time_attr == "training_iteration" else settings.time_attr,
        max_t=settings.max_t,
        grace_period=settings.grace_period,
        reduction_factor=settings.reduction_factor,
        **dict(settings.options),
    )


@SCHEDULERS.register("fifo")
def _fifo(settings: SchedulerSettings) -> TrialScheduler:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


@SCHEDULERS.register("moasha")
def moasha_from_settings(settings: SchedulerSettings) -> TrialScheduler:
    """Scheduler factory for the ``SCHEDULERS`` registry (``--scheduler moasha``).

    Reads ``settings.objectives`` (falls back to the single ``metric``/``mode``, which makes it
    plain ASHA), ``max_t``, ``grace_period``, ``reduction_factor``, ``time_attr`` and, from
    ``settings.options``, ``seed`` and ``brackets``.
    """
    # Multi-objective ASHA (docs/moasha.md); with no --objectives it ranks the single metric.
    from snnsearch.search.moasha import MultiObjectiveASHA

    objectives = settings.objectives or ((settings.metric, settings.mode),)
    options = dict(settings.options)
    # The sweep seed, if SchedulerSettings carries one, unless scheduler_options overrides it.
    options.setdefault("seed", getattr(settings, "seed", None))
    unknown = set(options) - {"seed", "brackets", "tiebreak"}
    if unknown:
        raise ValueError(
            f"unknown moasha scheduler_options {sorted(unknown)}; allowed: seed, brackets, tiebreak"
        )
    return MultiObjectiveASHA(
        objectives=objectives,
        time_attr=settings.time_attr,
        max_t=settings.max_t,
        grace_period=settings.grace_period,
        reduction_factor=settings.reduction_factor,
        **options,
    )


def build_scheduler(name: str, settings: SchedulerSettings) -> TrialScheduler:
    """The scheduler registered as ``name``, built from ``settings``."""
    return SCHEDULERS.get(name)(settings)
