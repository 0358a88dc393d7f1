"""A replay sweep through real Ray Tune: the arm's searcher, scheduler and stoppers, a trial-epoch
budget and a trace of every result (``bench/replay.py``; the simulator's equivalence test)."""

from __future__ import annotations

import tempfile
import time
from typing import Any

from snnsearch.spaces.space import SearchSpace
from snnsearch.testing.replay_arms import ARMS, Rungs, build_arm


class TrialEpochBudget:
    """Driver-side stopper that ends the whole sweep after ``budget`` distinct trial-epochs.

    Counts (trial, epoch) pairs, not calls: when a function trainable returns, Ray passes the
    trial's last result through the stopper a second time (flagged ``done``), which would
    charge every trial that ran to the end one epoch it never trained.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._seen: set[tuple[str, Any]] = set()

    @property
    def seen(self) -> int:
        return len(self._seen)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self._seen.add((trial_id, result.get("epoch", result.get("training_iteration"))))
        return False

    def stop_all(self) -> bool:
        return self.seen >= self.budget


def _stopper(budget: int, stoppers: tuple[Any, ...], budget_s: float | None = None) -> Any:
    """The sweep's budget first (a CombinedStopper skips later stoppers once one says stop):
    ``budget`` trial-epochs, or ``budget_s`` compute seconds (the engine's
    :class:`~snnsearch.search.budget.ComputeBudget`, ``--budget-seconds``)."""
    from ray.tune.stopper import CombinedStopper, Stopper

    if budget_s is not None:
        from snnsearch.search.budget import ComputeBudget

        return CombinedStopper(ComputeBudget(budget_s=budget_s), *stoppers)

    class _Budget(TrialEpochBudget, Stopper):
        pass

    return CombinedStopper(_Budget(budget), *stoppers)


def _trace_callback(rows: list[dict[str, Any]], arm: str, seed: int, concurrency: int) -> Any:
    from ray.tune import Callback

    class Trace(Callback):
        step = 0

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                            **info: Any) -> None:
            self.step += 1
            rows.append({
                "arm": arm, "seed": seed, "concurrency": concurrency, "step": self.step,
                "trial_id": trial.trial_id, "epoch": int(result["epoch"]),
                "val_acc": float(result["val_acc"]), "energy_mj": float(result["energy_mj"]),
                "config_id": int(result["replay_config_id"]),
                "stop_reason": str(result.get("stop_reason") or ""),
                "time_total_s": float(result.get("time_total_s", float("nan"))),
            })

    return Trace()


def ray_sweep(arm: str, *, seed: int, space: SearchSpace, rungs: Rungs, budget: int,
              concurrency: int, rows: list[dict[str, Any]], nsga2_population: int = 10,
              budget_s: float | None = None) -> float:
    """One real Ray Tune sweep of ``arm`` (Ray must be initialised) over the replay ``space``
    (its fixed values name the table); appends its trace to ``rows``; returns wall seconds.
    ``budget`` trial-epochs, or ``budget_s`` compute seconds when given (then ``budget`` only
    bounds the number of trials)."""
    from ray import tune

    searcher, sched, stoppers = build_arm(ARMS[arm], space=space, seed=seed, rungs=rungs,
                                          nsga2_population=nsga2_population)
    with tempfile.TemporaryDirectory(prefix="replay_") as storage:
        tuner = tune.Tuner(
            tune.with_resources(_trainable(), {"cpu": 1}),
            param_space=dict(space.fixed),
            tune_config=tune.TuneConfig(
                metric="val_acc", mode="max", search_alg=searcher, scheduler=sched,
                num_samples=budget, max_concurrent_trials=concurrency,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=f"{arm}-{seed}", storage_path=storage, verbose=0,
                stop=_stopper(budget, stoppers, budget_s),
                callbacks=[_trace_callback(rows, arm, seed, concurrency)],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
        start = time.perf_counter()
        grid = tuner.fit()
        if grid.errors:  # nothing in the table errors: this is the machine (OOM kill)
            raise RuntimeError(f"{len(grid.errors)} trial(s) errored: {grid.errors[0]!r:.200}")
        return time.perf_counter() - start


def _trainable() -> Any:
    from snnsearch.testing.replay import replay

    return replay


