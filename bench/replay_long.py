"""Arms on the long FashionMNIST curves, with a budget in compute seconds (issue 22).

Every arm of ``snnsearch/testing/replay_arms.py`` (the package's own searchers, schedulers and
stoppers) and the peer arm (Syne Tune's MOASHA, ``snnsearch/testing/peer_synetune.py``, when
``syne-tune`` is installed: ``pip install -e ".[bench]"``) runs sweeps over the recorded curves
of ``bench/replay_fashion.parquet`` through the discrete-event simulator
(``snnsearch/testing/replay_sim.py``; equal to real Ray Tune sweeps at concurrency 1, see
``tests/testing_tests/test_replay_sim.py``), each with the same budget of compute seconds: the
recorded CPU seconds of every epoch any trial ran. Every result is traced (arm, seed, step,
epoch, val_acc, energy_mj, cost, compute spent); ``bench/replay_long_report.py`` turns traces
into anytime hypervolume against seconds and trial-epochs and the table of docs/benchmarks.md.

    python bench/replay_long.py --arms all --first-seed 0 --seeds 20 --out bench/results/long_tune.parquet
    python bench/replay_long.py --arms all --first-seed 20 --seeds 20 --out bench/results/long_report.parquet
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from snnsearch.testing.replay_arms import ARMS, Rungs

# Syne Tune's MOASHA through its own scheduler API: with the priority its documentation states
# (the peer of the table) and as shipped in 0.16 (docs/moasha.md: its default priority reads the
# wrong rank), each with rungs in epochs and in compute seconds.
PEERS = ("synetune_moasha", "synetune_moasha_cost", "synetune_moasha_shipped",
         "synetune_moasha_shipped_cost")
TABLE = ROOT / "bench" / "replay_fashion.parquet"
SPACE = ROOT / "snnsearch" / "testing" / "replay_fashion.yaml"


def table_costs(table: Any) -> dict[str, float]:
    """Median cost of one recorded epoch and of one whole recorded curve (CPU seconds)."""
    from snnsearch.testing.replay import epoch_cost_s

    curves = [[epoch_cost_s(r) for r in c] for c in table.curves.values()]
    return {"epoch_s": statistics.median(x for c in curves for x in c),
            "curve_s": statistics.median(sum(c) for c in curves)}


def rungs_for(args: argparse.Namespace, costs: dict[str, float]) -> Rungs:
    """Epoch rungs from the flags; the same rungs in seconds for cost arms: the first at
    ``grace`` median epochs' cost (or ``--grace-s``), no cap below the costliest curve."""
    grace_s = args.grace_s or args.grace * costs["epoch_s"]
    return Rungs(max_t=args.max_t, grace=args.grace, eta=args.eta, grace_s=grace_s,
                 max_s=args.max_s or 1e9)


def policy_for(arm: str, seed: int, args: argparse.Namespace, rungs: Rungs) -> Any:
    """The simulator policy of ``arm``: ours through Ray's API, the peer through its own."""
    from snnsearch.spaces.space import load_space

    space = load_space(args.space).with_fixed(
        {"table": str(Path(args.table).resolve()), "epochs": args.max_t, "checkpoint": False,
         "seed": seed})
    if arm in PEERS:
        from snnsearch.testing.peer_synetune import SyneTuneMOASHA

        cost = arm.endswith("_cost")
        return SyneTuneMOASHA(
            space=space, seed=seed, max_t=rungs.max_s if cost else rungs.max_t,
            grace_period=rungs.grace_s if cost else rungs.grace, reduction_factor=rungs.eta,
            time_attr="time_total_s" if cost else "training_iteration",
            priority="shipped" if "shipped" in arm else "documented")
    from snnsearch.testing.replay_arms import build_arm
    from snnsearch.testing.replay_sim import RayPolicy

    searcher, scheduler, stoppers = build_arm(ARMS[arm], space=space, seed=seed, rungs=rungs)
    return RayPolicy(searcher, scheduler, metric="val_acc", mode="max",
                     fixed=dict(space.fixed), stoppers=stoppers)


def run_one(arm: str, seed: int, args: argparse.Namespace) -> tuple[list[dict[str, Any]], float]:
    """One simulated sweep: its trace rows and the wall seconds the policy took."""
    import optuna

    from snnsearch.testing.replay import load_table
    from snnsearch.testing.replay_sim import Budget, simulate

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = load_table(str(Path(args.table).resolve()))
    costs = table_costs(table)
    rungs = rungs_for(args, costs)
    budget_s = args.budget_curves * costs["curve_s"]
    start = time.perf_counter()
    trace = simulate(table, policy_for(arm, seed, args, rungs), budget=Budget(seconds=budget_s),
                     max_t=args.max_t, concurrency=args.concurrency)
    wall = time.perf_counter() - start
    return [{"arm": arm, "seed": seed, **r} for r in trace], wall


def _job(job: tuple[str, int, argparse.Namespace]) -> tuple[str, int, list[dict], float]:
    arm, seed, args = job
    rows, wall = run_one(arm, seed, args)
    return arm, seed, rows, wall


def write(rows: list[dict[str, Any]], out: Path, meta: dict[str, Any]) -> None:
    from replay_record import write as write_table

    write_table(rows, out, meta, key=b"snnsearch_replay_long")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", type=Path, default=TABLE)
    p.add_argument("--space", type=Path, default=SPACE)
    p.add_argument("--arms", default="all",
                   help=f"comma list or 'all': {', '.join([*ARMS, *PEERS])}")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--budget-curves", type=float, default=40.0,
                   help="budget in compute seconds, as a multiple of the median whole curve's")
    p.add_argument("--max-t", type=int, default=20)
    p.add_argument("--grace", type=int, default=1)
    p.add_argument("--eta", type=float, default=3.0)
    p.add_argument("--grace-s", type=float, help="first rung of cost arms in seconds")
    p.add_argument("--max-s", type=float, help="max_t of cost arms in seconds (default none)")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1, help="processes")
    p.add_argument("--resume", action="store_true", help="skip arm/seed pairs already in --out")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "long_tune.parquet")
    args = p.parse_args(argv)
    arms = [*ARMS, *PEERS] if args.arms == "all" else args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS and a not in PEERS]
    if unknown:
        p.error(f"unknown arms {unknown}; choose from {', '.join([*ARMS, *PEERS])}")
    if not args.table.is_file():
        p.error(f"--table {args.table}: no such file; record it with bench/replay_record.py "
                "--profile fashion_long")
    from snnsearch.testing.replay import load_table

    costs = table_costs(load_table(str(args.table.resolve())))
    meta: dict[str, Any] = {
        "command": "python bench/replay_long.py " + " ".join(argv or sys.argv[1:]),
        "args": {k: str(v) for k, v in vars(args).items()}, "costs": costs,
        "budget_s": args.budget_curves * costs["curve_s"],
        "rungs": vars(rungs_for(args, costs)), "walls": {},
    }
    rows: list[dict[str, Any]] = []
    if args.resume and args.out.exists():
        import pyarrow.parquet as pq

        old = pq.read_table(args.out)
        rows = old.to_pylist()
        meta["walls"] = json.loads(old.schema.metadata[b"snnsearch_replay_long"])["walls"]
    jobs = [(arm, seed, args) for seed in range(args.first_seed, args.first_seed + args.seeds)
            for arm in arms if f"{arm}/{seed}" not in meta["walls"]]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for arm, seed, trace, wall in pool.map(_job, jobs):
            rows += trace
            meta["walls"][f"{arm}/{seed}"] = round(wall, 3)
            print(f"{arm} seed {seed}: {len(trace)} results, {wall:.1f}s", flush=True)
            write(rows, args.out, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
