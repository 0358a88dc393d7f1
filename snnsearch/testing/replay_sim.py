"""Discrete-event replay of a sweep on recorded curves, without Ray's runtime.

``bench/replay.py`` runs every arm through real Ray Tune sweeps (``snnsearch.testing.replay``);
that costs Ray's per-result overhead (~0.2 s per result on the 2-core machine), so 40 seeds x 10
arms x 1,000-epoch sweeps of the long FashionMNIST recording would take most of a day. This
module drives the *same* searcher and scheduler objects (``build_searcher``,
``build_scheduler``: PrunedOptunaSearch, Ray's ASHA, MO-ASHA, the silence stopper) through the
calls Ray's ``TuneController`` makes, in the order it makes them (``_process_trial_result`` and
``stop_trial`` in Ray 2.x):

* per result: stopper(trial_id, result) -> STOP, else ``scheduler.on_trial_result``; on
  CONTINUE ``searcher.on_trial_result``;
* when a trial ends (STOP, or its last epoch): ``scheduler.on_trial_complete`` then
  ``searcher.on_trial_complete`` with the last result;
* a recorded divergence: ``scheduler.on_trial_error`` and ``searcher.on_trial_complete(error=True)``.

Time is simulated: each running trial's next epoch finishes ``cost`` seconds after its previous
one (the recorded CPU seconds), ``concurrency`` trials run at once, results are processed in
order of finishing. ``tests/testing_tests/test_replay_sim.py`` checks that at concurrency 1 the
trace equals a real Ray Tune replay sweep of the same arm and seed, result for result. Peers
that are not Ray objects (Syne Tune) plug in through :class:`Policy`.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from snnsearch.testing.replay import ReplayTable, epoch_cost_s, epoch_metrics

__all__ = ["Budget", "Policy", "RayPolicy", "SimTrial", "simulate"]


@dataclass
class SimTrial:
    """What Ray's schedulers and callbacks read from a ``Trial``: its id, config, status and
    last result."""

    trial_id: str
    config: dict[str, Any]
    curve: list[dict[str, Any]]
    epoch: int = 0
    cost_total_s: float = 0.0
    status: str = "RUNNING"
    last_result: dict[str, Any] = field(default_factory=dict)


class Policy(Protocol):
    """A searcher plus scheduler as the simulator calls them."""

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """The next configuration, or None when the policy has none to give now."""

    def on_add(self, trial: SimTrial) -> None:
        """``trial`` was created from the last suggestion."""

    def on_result(self, trial: SimTrial, result: dict[str, Any]) -> bool:
        """Whether ``trial`` continues after ``result``."""

    def on_complete(self, trial: SimTrial, result: dict[str, Any]) -> None:
        """``trial`` ended (stopped or finished) with ``result`` as its last."""

    def on_error(self, trial: SimTrial) -> None:
        """``trial`` failed (a recorded divergence)."""


class RayPolicy:
    """Ray Tune searcher + scheduler (+ stoppers) called as ``TuneController`` calls them.

    Args:
        searcher: a Ray ``Searcher`` (``build_searcher``), metric/mode already set.
        scheduler: a Ray ``TrialScheduler`` (``build_scheduler``).
        metric, mode: TuneConfig's, passed to ``scheduler.set_search_properties``.
        fixed: the param space's fixed values, merged under each suggestion as Ray's
            ``SearchGenerator`` does.
        stoppers: per-trial stoppers (``Stopper.__call__(trial_id, result)``), e.g. silence.
    """

    def __init__(self, searcher: Any, scheduler: Any, *, metric: str, mode: str,
                 fixed: Mapping[str, Any] | None = None, stoppers: tuple[Any, ...] = ()) -> None:
        self.searcher = searcher
        self.scheduler = scheduler
        self.fixed = dict(fixed or {})
        self.stoppers = stoppers
        scheduler.set_search_properties(metric, mode)
        searcher.set_search_properties(metric, mode, self.fixed)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        suggested = self.searcher.suggest(trial_id)
        if suggested is None or suggested == "FINISHED":
            return None
        return {**self.fixed, **suggested}

    def on_add(self, trial: SimTrial) -> None:
        self.scheduler.on_trial_add(None, trial)

    def on_result(self, trial: SimTrial, result: dict[str, Any]) -> bool:
        from ray.tune.schedulers import TrialScheduler

        if any(stop(trial.trial_id, result) for stop in self.stoppers):
            return False
        decision = self.scheduler.on_trial_result(None, trial, result)
        if decision == TrialScheduler.STOP:
            return False
        self.searcher.on_trial_result(trial.trial_id, result)
        return True

    def on_complete(self, trial: SimTrial, result: dict[str, Any]) -> None:
        self.scheduler.on_trial_complete(None, trial, result)
        self.searcher.on_trial_complete(trial.trial_id, result=result)

    def on_error(self, trial: SimTrial) -> None:
        self.scheduler.on_trial_error(None, trial)
        self.searcher.on_trial_complete(trial.trial_id, error=True)


@dataclass(frozen=True)
class Budget:
    """When a simulated sweep ends: after ``epochs`` trial-epochs or ``seconds`` of compute
    (the sum of every reported epoch's recorded cost, over all trials), whichever is given."""

    epochs: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.seconds is None):
            raise ValueError("give exactly one of Budget(epochs=...) or Budget(seconds=...)")

    def spent(self, epochs: int, seconds: float) -> bool:
        if self.epochs is not None:
            return epochs >= self.epochs
        return seconds >= float(self.seconds or 0.0)


def simulate(
    table: ReplayTable,
    policy: Policy,
    *,
    budget: Budget,
    max_t: int,
    concurrency: int = 1,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One sweep; returns its trace, one row per reported result in processing order.

    Each row: ``step`` (1-based), ``trial_id``, ``epoch``, ``val_acc``, ``energy_mj``,
    ``config_id``, ``cost_s`` (the epoch's), ``spent_s`` (compute spent by the sweep so far,
    this epoch included), ``clock_s`` (simulated wall time), ``stop_reason`` and ``decision``
    (``continue``, ``stop``: the scheduler or a stopper ended it, ``end``: its last epoch).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency={concurrency} must be >= 1")
    running: list[tuple[float, int, SimTrial]] = []  # (finish time, order, trial)
    trace: list[dict[str, Any]] = []
    spent_s, count, serial, clock = 0.0, 0, 0, 0.0
    exhausted = False
    order = itertools.count()  # heap tie-break: equal finish times in scheduling order

    def start(now: float) -> None:
        nonlocal serial, exhausted
        while len(running) < concurrency and not exhausted:
            trial_id = f"sim_{serial:05d}"
            config = policy.suggest(trial_id)
            if config is None:
                exhausted = True
                return
            serial += 1
            trial = SimTrial(trial_id, config, table.curves[table.nearest(config)])
            policy.on_add(trial)
            _schedule(trial, now)

    def _schedule(trial: SimTrial, now: float) -> None:
        row = trial.curve[trial.epoch]
        cost = epoch_cost_s(row) if not row.get("error") else 0.0
        heapq.heappush(running, (now + (cost if math.isfinite(cost) else 0.0), next(order), trial))

    start(clock)
    while running:
        clock, _, trial = heapq.heappop(running)
        row = trial.curve[trial.epoch]
        trial.epoch += 1
        if row.get("error"):
            trial.status = "ERROR"
            policy.on_error(trial)
            start(clock)
            continue
        cost = epoch_cost_s(row)
        trial.cost_total_s += cost
        spent_s += cost
        count += 1
        last = trial.epoch >= min(max_t, len(trial.curve))
        result = {**epoch_metrics(row), "training_iteration": trial.epoch,
                  "time_total_s": trial.cost_total_s, "trial_id": trial.trial_id,
                  "done": last, "config": trial.config}
        keep = policy.on_result(trial, result)
        trial.last_result = result
        trace.append({"step": count, "trial_id": trial.trial_id, "epoch": trial.epoch,
                      "val_acc": result["val_acc"], "energy_mj": result["energy_mj"],
                      "config_id": int(row["config_id"]), "cost_s": cost, "spent_s": spent_s,
                      "clock_s": clock, "stop_reason": str(result.get("stop_reason") or ""),
                      "decision": "stop" if not keep else "end" if last else "continue"})
        if on_result is not None:
            on_result(trace[-1])
        if budget.spent(count, spent_s):
            break
        if keep and not last:
            _schedule(trial, clock)
            continue
        trial.status = "TERMINATED"
        policy.on_complete(trial, result)
        start(clock)
    return trace
