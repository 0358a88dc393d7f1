"""The arms of the replay benchmarks: which sampler, scheduler and stopper a sweep uses.

One definition, shared by ``bench/replay.py`` (real Ray Tune sweeps), the discrete-event
simulator (``bench/replay_long.py`` through :mod:`snnsearch.testing.replay_sim`) and the test that
checks the two give the same trace. Every part is the package's own factory
(``build_searcher``, ``build_scheduler``, ``SilenceStopper``), so an arm is what a user gets
from the same flags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from snnsearch.spaces.space import SearchSpace

OBJECTIVES = (("val_acc", "max"), ("energy_mj", "min"))

# time_attr of an arm: progress in epochs, or cumulative compute seconds (Ray's time_total_s).
EPOCH, COST = "epoch", "cost"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Arm:
    """One benchmark arm.

    Args:
        sampler: a ``SAMPLERS`` name (tpe is MOTPE with two objectives).
        scheduler: a ``SCHEDULERS`` name (fifo, asha, moasha).
        tiebreak: MO-ASHA's order within a front.
        silence: the silence stopper on.
        time_attr: ``epoch`` or ``cost`` (rungs in compute seconds).
        sampler_options: extra sampler keywords.
        tell_rung: BOHB-style feedback: the sampler is told every trial's values at the first
            rung's epoch (``PrunedOptunaSearch(tell_epoch=grace)``).
        cheap_first: cost-aware sampling: the first ``cheap_first`` trials run at the space's
            smallest T (Optuna ``enqueue_trial`` with T fixed, the other parameters sampled),
            so the sweep's first compute goes to the cheap end of the dominant cost factor.
    """

    sampler: str
    scheduler: str
    tiebreak: str = "crowding"
    silence: bool = False
    time_attr: str = EPOCH
    sampler_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tell_rung: bool = False
    cheap_first: int = 0


ARMS: dict[str, Arm] = {
    "random_fifo": Arm(sampler="random", scheduler="fifo"),
    "tpe_fifo": Arm(sampler="tpe", scheduler="fifo"),
    "tpe_asha": Arm(sampler="tpe", scheduler="asha"),
    "nsga2_fifo": Arm(sampler="nsga2", scheduler="fifo"),
    "moasha_crowd": Arm(sampler="tpe", scheduler="moasha"),
    "moasha_crowd_silence": Arm(sampler="tpe", scheduler="moasha", silence=True),
    "moasha_eps": Arm(sampler="tpe", scheduler="moasha", tiebreak="epsnet"),
    "moasha_eps_silence": Arm(sampler="tpe", scheduler="moasha", tiebreak="epsnet",
                              silence=True),
    # Issue 22: the same schedulers with rungs in compute seconds, and the random-sampler
    # control that tells whether the sampler adds anything.
    "random_moasha": Arm(sampler="random", scheduler="moasha"),
    "moasha_cost": Arm(sampler="tpe", scheduler="moasha", time_attr=COST),
    "moasha_cost_silence": Arm(sampler="tpe", scheduler="moasha", time_attr=COST, silence=True),
    "random_moasha_cost": Arm(sampler="random", scheduler="moasha", time_attr=COST),
    "tpe_asha_cost": Arm(sampler="tpe", scheduler="asha", time_attr=COST),
    # Issue 22, part 4: promotion by hypervolume contribution, and the sampler told every
    # trial's first-rung values (BOHB-style), with epoch and cost rungs.
    "moasha_hvc": Arm(sampler="tpe", scheduler="moasha", tiebreak="hvc"),
    "moasha_bohb": Arm(sampler="tpe", scheduler="moasha", tell_rung=True),
    "moasha_cost_hvc": Arm(sampler="tpe", scheduler="moasha", tiebreak="hvc", time_attr=COST),
    "moasha_cost_bohb": Arm(sampler="tpe", scheduler="moasha", tell_rung=True, time_attr=COST),
    "moasha_cost_cheap": Arm(sampler="tpe", scheduler="moasha", time_attr=COST, cheap_first=10),
    # Combinations of what won on the tuning seeds (0-19) of docs/benchmarks.md "Issue 22".
    "moasha_cost_cheap_hvc": Arm(sampler="tpe", scheduler="moasha", time_attr=COST,
                                 cheap_first=10, tiebreak="hvc"),
    "moasha_cost_cheap_eps": Arm(sampler="tpe", scheduler="moasha", time_attr=COST,
                                 cheap_first=10, tiebreak="epsnet"),
    "moasha_cheap_eps_silence": Arm(sampler="tpe", scheduler="moasha", tiebreak="epsnet",
                                    silence=True, cheap_first=10),
    "moasha_cost_eps": Arm(sampler="tpe", scheduler="moasha", tiebreak="epsnet",
                           time_attr=COST),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rungs:
    """Rung geometry shared by every arm of one benchmark.

    ``max_t``/``grace`` in epochs; ``grace_s``/``max_s`` the same rungs in compute seconds for
    cost arms (``time_attr`` time_total_s).
    """

    max_t: int
    grace: int = 1
    eta: float = 3.0
    grace_s: float | None = None
    max_s: float | None = None


def build_arm(arm: Arm, *, space: SearchSpace, seed: int, rungs: Rungs,
              nsga2_population: int = 10) -> tuple[Any, Any, tuple[Any, ...]]:
    """(searcher, scheduler, stoppers) of ``arm`` for one seed."""
    from snnsearch.search.schedulers import SchedulerSettings, build_scheduler
    from snnsearch.search.searchers import build_searcher, enqueue_cheap_first
    from snnsearch.search.silence import SilenceStopper

    options = dict(arm.sampler_options)
    if arm.sampler == "nsga2":
        options.setdefault("population_size", nsga2_population)
    searcher = build_searcher(
        space=space.define_by_run(), sampler=arm.sampler, seed=seed,
        metric=[m for m, _ in OBJECTIVES], mode=[d for _, d in OBJECTIVES], options=options,
        max_t=rungs.max_t,
        searcher_options={"tell_epoch": rungs.grace} if arm.tell_rung else None,
    )
    enqueue_cheap_first(searcher, space.params, arm.cheap_first)
    if arm.time_attr == COST:
        if rungs.grace_s is None or rungs.max_s is None:
            raise ValueError(f"cost arm needs Rungs(grace_s=..., max_s=...), got {rungs}")
        time_attr, max_t, grace = "time_total_s", rungs.max_s, rungs.grace_s
    else:
        time_attr, max_t, grace = "training_iteration", rungs.max_t, rungs.grace
    scheduler = build_scheduler(arm.scheduler, SchedulerSettings(
        metric="val_acc", mode="max", max_t=max_t, grace_period=grace,
        reduction_factor=rungs.eta, objectives=OBJECTIVES, seed=seed, time_attr=time_attr,
        options={"tiebreak": arm.tiebreak} if arm.scheduler == "moasha" else {},
    ))
    stoppers = (SilenceStopper(check_from=1),) if arm.silence else ()
    return searcher, scheduler, stoppers
