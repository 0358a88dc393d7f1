"""Replay benchmark of searcher/scheduler arms on recorded MNIST learning curves.

``bench/replay_record.py`` recorded every epoch of a grid of real MNIST SNN trainings once
(``bench/replay_mnist.parquet``). Here every arm runs real Ray Tune sweeps with the package's
own searchers (``build_searcher``: PrunedOptunaSearch), schedulers (``build_scheduler``: FIFO,
Ray's ASHA, MO-ASHA) and silence stopper over the table-backed trainable
(:func:`snnsearch.testing.replay.replay`), so a sweep costs seconds and many seeds are cheap.

Every arm gets the same budget in trial-epochs (a driver-side stopper ends the sweep after
``--budget`` reported epochs, whichever trials they came from). Every reported result is traced
(arm, seed, trial-epoch index, val_acc, energy_mj); ``bench/replay_report.py`` turns the traces
into anytime hypervolume curves and a paired Wilcoxon test.

    python bench/replay.py --arms all --seeds 20 --budget 150 --out bench/results/replay_c1.parquet
    python bench/replay.py --arms moasha_crowd_silence,tpe_fifo --seeds 1 --concurrency 4 \
        --out bench/results/replay_c4.parquet
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

OBJECTIVES = (("val_acc", "max"), ("energy_mj", "min"))
# arm -> (sampler, scheduler, moasha tiebreak, silence stopper)
ARMS: dict[str, tuple[str, str, str, bool]] = {
    "random_fifo": ("random", "fifo", "crowding", False),
    "tpe_fifo": ("tpe", "fifo", "crowding", False),
    "tpe_asha": ("tpe", "asha", "crowding", False),
    "nsga2_fifo": ("nsga2", "fifo", "crowding", False),
    "moasha_crowd": ("tpe", "moasha", "crowding", False),
    "moasha_crowd_silence": ("tpe", "moasha", "crowding", True),
    "moasha_eps": ("tpe", "moasha", "epsnet", False),
    "moasha_eps_silence": ("tpe", "moasha", "epsnet", True),
}


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


def _stopper(budget: int, silence: bool) -> Any:
    from ray.tune.stopper import CombinedStopper, Stopper

    from snnsearch.search.silence import SilenceStopper

    class _Budget(TrialEpochBudget, Stopper):
        pass

    parts = [_Budget(budget)] + ([SilenceStopper(check_from=1)] if silence else [])
    return CombinedStopper(*parts)


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
            })

    return Trace()


def run_arm(arm: str, seed: int, args: argparse.Namespace, rows: list[dict[str, Any]]) -> float:
    """One sweep of ``arm`` with ``seed``; appends its trace to ``rows``; returns wall seconds."""
    from ray import tune

    from snnsearch.search.schedulers import SchedulerSettings, build_scheduler
    from snnsearch.search.searchers import build_searcher
    from snnsearch.spaces.space import load_space

    sampler, scheduler, tiebreak, silence = ARMS[arm]
    space = load_space(ROOT / "snnsearch" / "testing" / "replay_mnist.yaml").with_fixed(
        {"table": str(Path(args.table).resolve()), "epochs": args.max_t, "checkpoint": False,
         "seed": seed})
    options = {"population_size": args.nsga2_population} if sampler == "nsga2" else {}
    searcher = build_searcher(
        space=space.define_by_run(), sampler=sampler, seed=seed,
        metric=[m for m, _ in OBJECTIVES], mode=[d for _, d in OBJECTIVES], options=options,
        max_t=args.max_t,
    )
    sched = build_scheduler(scheduler, SchedulerSettings(
        metric="val_acc", mode="max", max_t=args.max_t, grace_period=args.grace,
        reduction_factor=args.eta, objectives=OBJECTIVES, seed=seed,
        options={"tiebreak": tiebreak} if scheduler == "moasha" else {},
    ))
    with tempfile.TemporaryDirectory(prefix="replay_") as storage:
        tuner = tune.Tuner(
            tune.with_resources(_trainable(), {"cpu": 1}),
            param_space=dict(space.fixed),
            tune_config=tune.TuneConfig(
                metric="val_acc", mode="max", search_alg=searcher, scheduler=sched,
                num_samples=args.budget, max_concurrent_trials=args.concurrency,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=f"{arm}-{seed}", storage_path=storage, verbose=0,
                stop=_stopper(args.budget, silence),
                callbacks=[_trace_callback(rows, arm, seed, args.concurrency)],
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


def write(rows: list[dict[str, Any]], out: Path, meta: dict[str, Any]) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows).replace_schema_metadata(
        {b"snnsearch_replay_runs": json.dumps(meta).encode()})
    tmp = out.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default=str(ROOT / "bench" / "replay_mnist.parquet"))
    p.add_argument("--arms", default="all", help=f"comma list or 'all': {', '.join(ARMS)}")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--budget", type=int, default=150, help="trial-epochs per sweep")
    p.add_argument("--max-t", type=int, default=5)
    p.add_argument("--grace", type=int, default=1)
    p.add_argument("--eta", type=float, default=3.0)
    p.add_argument("--nsga2-population", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--resume", action="store_true", help="skip arm/seed pairs already in --out")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "replay_c1.parquet")
    args = p.parse_args(argv)
    arms = list(ARMS) if args.arms == "all" else args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        p.error(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    import ray

    ray.init(address="local", num_cpus=max(args.concurrency, 1), include_dashboard=False,
             log_to_driver=False, logging_level="ERROR")
    rows: list[dict[str, Any]] = []
    meta = {"command": "python bench/replay.py " + " ".join(argv or sys.argv[1:]),
            "args": {k: str(v) for k, v in vars(args).items()}, "walls": {}}
    if args.resume and args.out.exists():
        import json

        import pyarrow.parquet as pq

        table = pq.read_table(args.out)
        rows = table.to_pylist()
        meta["walls"] = json.loads(table.schema.metadata[b"snnsearch_replay_runs"])["walls"]
    try:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for arm in arms:  # interleaved: load drift hits every arm alike
                if f"{arm}/{seed}" in meta["walls"]:
                    continue
                for attempt in range(3):  # a shared machine's OOM killer may take a worker
                    trace: list[dict[str, Any]] = []
                    try:
                        wall = run_arm(arm, seed, args, trace)
                        break
                    except Exception as err:  # noqa: BLE001 - rerun the whole sweep
                        print(f"{arm} seed {seed}: attempt {attempt + 1} failed: {err!r:.200}",
                              flush=True)
                else:
                    raise RuntimeError(f"{arm} seed {seed} failed 3 times")
                rows += trace
                meta["walls"][f"{arm}/{seed}"] = round(wall, 2)
                print(f"{arm} seed {seed}: {wall:.1f}s", flush=True)
                write(rows, args.out, meta)
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
