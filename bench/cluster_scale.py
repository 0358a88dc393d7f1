"""Where does the single sweep driver stop keeping up? Trivial trials on a simulated GPU cluster.

Starts a ``ray.cluster_utils.Cluster`` (a CPU head plus ``--nodes`` workers with ``--gpus`` fake
GPUs each, all on this machine), then runs sweeps of growing size through the real engine
(``snnsearch.sweep.run.run_sweep``: Optuna searcher, nested MLflow callback on a sqlite store,
Parquet table) with a trainable that only reports ``--epochs`` results. What is left is the
driver's own cost per trial: scheduling, searcher, callbacks, experiment-state snapshots.

Reports, per sweep size: wall time, trials/s, results/s, and the driver's resident memory after
the sweep and its peak while it ran. Usage::

    python bench/cluster_scale.py --trials 50,100,200 --nodes 4 --gpus 4
    python bench/cluster_scale.py --trials 100,400 --out scale.json

Never calls ``ray stop``; it shuts down only the cluster it started.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def trivial(config: dict[str, Any]) -> None:
    """A trial that costs nothing: ``epochs`` reports of a made-up accuracy."""
    from ray import tune

    epochs = int(config["epochs"])
    for epoch in range(1, epochs + 1):
        metrics = {"epoch": epoch, "val_acc": float(config["x"]) * epoch / epochs}
        if epoch == epochs:
            metrics["finished_at"] = time.time()  # for the steady-state rate
        tune.report(metrics)


class RssSampler:
    """Samples this process's resident memory every ``period`` s (peak and last, in MiB)."""

    def __init__(self, period: float = 0.2) -> None:
        import psutil

        self._proc = psutil.Process()
        self._period = period
        self._stop = threading.Event()
        self.peak = self.now()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> float:
        return self._proc.memory_info().rss / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def one_sweep(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """Runs one sweep of ``n`` trivial trials through the engine; returns its measurements."""
    import yaml

    from snnsearch.spaces.space import load_space
    from snnsearch.sweep.run import run_sweep
    from snnsearch.sweep.settings import resolve_settings

    space_path = workdir / f"scale_{n}.yaml"
    space_path.write_text(yaml.safe_dump({
        "trainable": "__main__:trivial", "experiment": "cluster-scale",
        "fixed": {}, "space": {"x": {"float": [0.0, 1.0]}},
        "tune": {"metric": "val_acc", "mode": "max", "samples": n, "sampler": "random",
                 "scheduler": "fifo", "max_epochs": args.epochs, "concurrency": args.concurrency,
                 "cpus_per_trial": 0.25, "gpus_per_trial": args.gpus_per_trial},
    }))
    space = load_space(space_path)
    settings = resolve_settings(space, task="scale", overrides={
        "storage": str(workdir / "nfs"), "name": f"scale_{n}",
        "mlflow_uri": f"sqlite:///{workdir / 'mlflow.db'}"})
    with RssSampler() as rss:
        start = time.perf_counter()
        outcome = run_sweep(settings, space)
        wall = time.perf_counter() - start
    done = outcome.summary["counts"]["completed"]
    return {"trials": n, "completed": done, "wall_s": round(wall, 2),
            "trials_per_s": round(done / wall, 2),
            "steady_trials_per_s": round(steady_rate(outcome.rows), 2),
            "results_per_s": round(done * args.epochs / wall, 1),
            "driver_rss_mib": round(rss.now(), 1), "driver_peak_mib": round(rss.peak, 1),
            "load_avg_1m": round(os.getloadavg()[0], 1)}


def steady_rate(rows: list[dict[str, Any]]) -> float:
    """Trials finished per second between the first and the last completion: the driver's
    throughput once trial actors are up (the sweep's wall time also holds their start-up)."""
    ends = sorted(float(r["last/finished_at"]) for r in rows if r.get("last/finished_at"))
    if len(ends) < 2 or ends[-1] <= ends[0]:
        return float("nan")
    return (len(ends) - 1) / (ends[-1] - ends[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", default="50,100,200", help="comma-separated sweep sizes")
    parser.add_argument("--nodes", type=int, default=4, help="worker nodes")
    parser.add_argument("--gpus", type=int, default=4, help="fake GPUs per worker node")
    parser.add_argument("--cpus", type=int, default=4, help="logical CPUs per worker node")
    parser.add_argument("--gpus-per-trial", type=float, default=0.25)
    parser.add_argument("--concurrency", type=int, default=16, help="trials running at once")
    parser.add_argument("--epochs", type=int, default=2, help="reports per trial")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 0, "include_dashboard": False})
    rows = []
    try:
        for _ in range(args.nodes):
            cluster.add_node(num_cpus=args.cpus, num_gpus=args.gpus)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        with tempfile.TemporaryDirectory(prefix="snnsearch_scale_") as tmp:
            for n in (int(t) for t in args.trials.split(",")):
                rows.append(one_sweep(n, args, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    header = ("trials", "completed", "wall_s", "trials_per_s", "steady_trials_per_s",
              "results_per_s", "driver_rss_mib", "driver_peak_mib", "load_avg_1m")
    print(f"\n{args.nodes} nodes x {args.gpus} fake GPUs, {args.gpus_per_trial} GPU/trial, "
          f"concurrency {args.concurrency}, {args.epochs} reports/trial")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
