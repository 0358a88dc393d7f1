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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

# The arms (sampler, scheduler, tiebreak, silence, time attribute): snnsearch/testing/replay_arms.py,
# shared with the simulator benchmark (bench/replay_long.py) and its equivalence test.
from snnsearch.testing.replay_arms import ARMS, Rungs
from snnsearch.testing.replay_ray import ray_sweep


def run_arm(arm: str, seed: int, args: argparse.Namespace, rows: list[dict[str, Any]]) -> float:
    """One sweep of ``arm`` with ``seed``; appends its trace to ``rows``; returns wall seconds."""
    from snnsearch.spaces.space import load_space

    space = load_space(args.space).with_fixed(
        {"table": str(Path(args.table).resolve()), "epochs": args.max_t, "checkpoint": False,
         "seed": seed})
    rungs = Rungs(max_t=args.max_t, grace=args.grace, eta=args.eta, grace_s=args.grace_s,
                  max_s=args.max_s)
    return ray_sweep(arm, seed=seed, space=space, rungs=rungs, budget=args.budget,
                     concurrency=args.concurrency, rows=rows,
                     nsga2_population=args.nsga2_population, budget_s=args.budget_seconds)


def write(rows: list[dict[str, Any]], out: Path, meta: dict[str, Any]) -> None:
    from replay_record import write as write_table

    write_table(rows, out, meta, key=b"snnsearch_replay_runs")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default=str(ROOT / "bench" / "replay_mnist.parquet"))
    p.add_argument("--space", type=Path,
                   default=ROOT / "snnsearch" / "testing" / "replay_mnist.yaml",
                   help="replay space whose levels match --table")
    p.add_argument("--grace-s", type=float, help="first rung in compute seconds (cost arms)")
    p.add_argument("--max-s", type=float, help="max_t in compute seconds (cost arms)")
    p.add_argument("--arms", default="all", help=f"comma list or 'all': {', '.join(ARMS)}")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--budget", type=int, default=150, help="trial-epochs per sweep")
    p.add_argument("--budget-seconds", type=float,
                   help="compute seconds per sweep instead (the recorded cost; --budget then "
                        "only bounds the number of trials)")
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
