"""FIFO vs ASHA vs MO-ASHA + silent pruning on MNIST with a CPU-sized budget.

Every arm samples the same space (``search_spaces/mnist.yaml`` with small-data overrides) with
the same sampler seed and sample count; only scheduling differs:

* ``fifo``: Ray's OptunaSearch (TPE) on val_acc, every trial runs all epochs.
* ``asha``: the same searcher with Ray's ASHA on val_acc.
* ``moasha``: :class:`PrunedOptunaSearch` on (val_acc max, energy_mj min), MO-ASHA on the same
  pair and :class:`SilenceStopper`; stopped and silent trials reach TPE as PRUNED.

Reported per arm: trial-epochs spent (sum of epochs run), wall time of ``fit``, best val_acc seen
in any epoch, and the hypervolume of the (val_acc, energy_mj) front of the completed trials for
a stated reference point (default: val_acc 0.0, energy_mj ``--ref-mj``; only points better than
it in both count). The Tuner is assembled here rather than through ``snnsearch.sweep.tuner`` because the
arms differ in exactly the parts ``run_sweep`` fixes per sweep (searcher class, stopper).

    python bench/scheduler_comparison.py --samples 16 --epochs 4 --out bench/results/mnist.json
    python bench/scheduler_comparison.py --smoke        # synthetic trainable, ~1 min on 2 CPUs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

OBJECTIVES = [("val_acc", "max"), ("energy_mj", "min")]
ARMS = ("fifo", "asha", "moasha")


def smoke_trainable(config: dict[str, Any]) -> None:
    """Synthetic stand-in with the real metric keys: high thresholds are silent.

    Accuracy rises with epochs and ``x``; energy grows with ``T``; ``v_threshold > 1.3`` never
    spikes (accuracy at chance), as a real LIF readout with an unreachable threshold would.
    """
    from ray import tune

    silent = config["v_threshold"] > 1.3
    for epoch in range(1, config["epochs"] + 1):
        time.sleep(0.05)
        acc = 0.1 if silent else 0.1 + 0.85 * config["x"] * (1 - 0.5 ** epoch)
        energy = 0.0 if silent else 0.01 * config["T"] * (1 + config["x"])
        tune.report({
            "val_acc": acc, "energy_mj": energy, "output_firing_rate": 0.0 if silent else 0.1,
            "silent_fraction": 1.0 if silent else 0.0,
        })


def smoke_space(trial: Any) -> dict[str, Any]:
    """Define-by-run space of the smoke trainable."""
    trial.suggest_float("x", 0.0, 1.0)
    trial.suggest_int("T", 1, 8)
    trial.suggest_float("v_threshold", 0.5, 1.5)
    return {}


def data_root(args: argparse.Namespace) -> str:
    """``--data-dir``, or a writable root with the official .gz files of the real-data folder
    (``$SNNSEARCH_TEST_DATA``, default ``shared/data`` beside the clone) linked in (torchvision
    checks their md5 and extracts them; nothing is downloaded)."""
    if args.data_dir:
        return str(args.data_dir)
    shared = Path(os.environ.get("SNNSEARCH_TEST_DATA") or ROOT.parent / "shared" / "data")
    shared = shared / "MNIST" / "raw"
    if not shared.is_dir():
        raise SystemExit(f"no --data-dir and no {shared}: pass --data-dir <root with MNIST/raw>")
    raw = Path(tempfile.gettempdir()) / "snnsearch_bench_data" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for gz in shared.iterdir():
        if not (raw / gz.name).exists():
            (raw / gz.name).symlink_to(gz)
    return str(raw.parents[1])


def mnist_parts(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """(trainable, define-by-run space, fixed config) for the MNIST arms."""
    from snnsearch.spaces.space import load_space
    from snnsearch.sweep.tasks import TASKS

    fixed = {"train_subset": args.train_subset, "val_size": args.val_size, "epochs": args.epochs,
             "device": "cpu", "figures": False, "energy_images": 16, "seed": args.seed,
             "channels": 16, "hidden_width": 128, "data_dir": data_root(args)}
    space = load_space(ROOT / "search_spaces" / "mnist.yaml")
    space = space.with_fixed(fixed)
    return TASKS.get(space.trainable).trainable, space.define_by_run(), {**space.fixed}


def build_arm(arm: str, args: argparse.Namespace, space: Any) -> dict[str, Any]:
    """Searcher, scheduler and stopper of one arm."""
    import optuna
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from snnsearch.search.moasha import MultiObjectiveASHA
    from snnsearch.search.pruned_optuna import PrunedOptunaSearch
    from snnsearch.search.silence import SilenceStopper

    sampler = optuna.samplers.TPESampler(seed=args.seed)
    if arm == "moasha":
        return {
            "search_alg": PrunedOptunaSearch(
                space, metric=[m for m, _ in OBJECTIVES], mode=[d for _, d in OBJECTIVES],
                max_t=args.epochs, sampler=sampler,
            ),
            "scheduler": MultiObjectiveASHA(
                objectives=OBJECTIVES, max_t=args.epochs, grace_period=args.grace,
                reduction_factor=args.eta, seed=args.seed,
            ),
            "stop": SilenceStopper(check_from=1),
        }
    searcher = OptunaSearch(space, metric="val_acc", mode="max", sampler=sampler)
    scheduler = (
        FIFOScheduler() if arm == "fifo"
        else ASHAScheduler(max_t=args.epochs, grace_period=args.grace, reduction_factor=args.eta)
    )
    return {"search_alg": searcher, "scheduler": scheduler, "stop": None}


def run_arm(arm: str, args: argparse.Namespace, storage: str) -> dict[str, Any]:
    """Fits one arm and returns its measured row."""
    from ray import tune

    if args.smoke:
        trainable, space, fixed = smoke_trainable, smoke_space, {"epochs": args.epochs}
    else:
        trainable, space, fixed = mnist_parts(args)
    parts = build_arm(arm, args, space)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": args.cpus_per_trial}),
        param_space=fixed,
        # TuneConfig names the primary objective for ASHA and get_best_result; MO-ASHA and
        # PrunedOptunaSearch accept it and keep their two objectives.
        tune_config=tune.TuneConfig(
            metric="val_acc", mode="max", search_alg=parts["search_alg"],
            scheduler=parts["scheduler"], num_samples=args.samples,
            max_concurrent_trials=args.concurrency, reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"bench_{arm}", storage_path=storage, stop=parts["stop"], verbose=0
        ),
    )
    start = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - start
    return summarize_arm(arm, grid, wall, args)


def summarize_arm(arm: str, grid: Any, wall_s: float, args: argparse.Namespace) -> dict[str, Any]:
    """Trial-epochs, wall time, best accuracy, silent count and front hypervolume of one arm.

    ``silent`` counts trials whose last result is silent or saturated (stopped as such, or, in
    arms without the stopper, judged by :func:`silence_verdict` afterwards).
    """
    from snnsearch.search.pareto import as_minimization, hypervolume, pareto_mask
    from snnsearch.search.silence import silence_verdict

    epochs, bests, silent, errors, front_pts = 0, [], 0, 0, []
    for result in grid:
        if result.error is not None:
            errors += 1
            continue
        m = result.metrics or {}
        epochs += int(m.get("training_iteration", 0))
        history = result.metrics_dataframe
        if history is not None and "val_acc" in history:
            bests.append(float(history["val_acc"].max()))
        # Same rule for every arm: FIFO/ASHA trials are not stopped when silent, but a silent
        # net's zero energy must not enter their front either.
        is_silent = bool(m.get("stop_reason")) or silence_verdict(m) is not None
        silent += is_silent
        if m.get("training_iteration") == args.epochs and not is_silent:
            front_pts.append([m["val_acc"], m["energy_mj"]])
    modes = [d for _, d in OBJECTIVES]
    reference = (0.0, args.ref_mj)
    front = [p for p, keep in zip(front_pts, pareto_mask(as_minimization(front_pts, modes)))
             if keep] if front_pts else []
    hv = hypervolume(front, reference, modes=modes) if front else 0.0
    return {"arm": arm, "trials": len(grid), "errors": errors, "trial_epochs": epochs,
            "wall_s": round(wall_s, 1), "best_val_acc": max(bests, default=float("nan")),
            "silent": silent, "front_size": len(front), "hypervolume": hv,
            "reference": list(reference)}


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table for docs/benchmarks.md."""
    head = ("| arm | trials | trial-epochs | wall s | best val_acc | silent | front | "
            "hypervolume |\n|---|---|---|---|---|---|---|---|")
    body = [f"| {r['arm']} | {r['trials']} | {r['trial_epochs']} | {r['wall_s']} | "
            f"{r['best_val_acc']:.4f} | {r['silent']} | {r['front_size']} | "
            f"{r['hypervolume']:.5f} |" for r in rows]
    return "\n".join([head, *body])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma list from {ARMS}")
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--epochs", type=int, default=4, help="max_t: epochs of a full trial")
    p.add_argument("--grace", type=int, default=1)
    p.add_argument("--eta", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-subset", type=int, default=4096)
    p.add_argument("--val-size", type=int, default=1024)
    p.add_argument("--data-dir", default=None,
                   help="root holding MNIST/raw (default: links to $SNNSEARCH_TEST_DATA)")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--ref-mj", type=float, default=1.0,
                   help="hypervolume reference energy (mJ); reference accuracy is 0.0")
    p.add_argument("--smoke", action="store_true", help="synthetic trainable, no MNIST")
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    unknown = set(args.arms.split(",")) - set(ARMS)
    if unknown:
        p.error(f"unknown arms {sorted(unknown)}; choose from {ARMS}")
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    import ray

    args = parse_args(argv)
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as storage:
            for arm in args.arms.split(","):
                rows.append(run_arm(arm, args, storage))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        if started:
            ray.shutdown()
    print(markdown(rows))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
