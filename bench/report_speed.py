"""Benchmark (not a test): how long ``snnsearch.report`` takes to build the HTML/Markdown report of
a 200-trial sweep (target: <= 10 s on a 2-core machine).

Timing only: a real 200-trial MNIST sweep does not exist on a CPU machine, so the table is shaped
like one without being one. Configurations are drawn by Optuna's TPE-free RandomSampler from the
real ``search_spaces/mnist.yaml`` (all of its conditionals, the ANN arms included); the metric
values are a stated smooth function of the configuration plus noise, and each trial gets a
per-epoch history (15 epochs, ASHA-like stops) and per-layer firing rates, so every section of
the report has the work a real sweep would give it. The numbers in the tables mean nothing.

    OMP_NUM_THREADS=1 nice -n 19 python bench/report_speed.py --trials 200 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def shaped_sweep(out: Path, trials: int, seed: int = 0) -> None:
    """Writes trials.parquet, history.parquet, sweep.json and space.yaml into ``out``."""
    import pandas as pd
    import yaml

    from snnsearch.reporting.history import HISTORY_FILE
    from snnsearch.reporting.results import write_table
    from snnsearch.spaces.space import load_space

    space = load_space(ROOT / "search_spaces" / "mnist.yaml")
    rng = np.random.default_rng(seed)
    rows, hist = [], []
    for i in range(trials):
        cfg = space.sample(seed + i)
        ann = str(cfg["model"]).endswith("_ann")
        quality = 0.99 - 0.02 * abs(math.log(cfg["lr"] / 2e-3)) - 0.004 * abs(cfg.get("T", 4) - 5)
        energy = (0.05 if ann else 0.004 * cfg["T"]) * (1 + 0.3 * rng.random())
        planned = 15
        ran = planned if rng.random() < 0.2 else int(rng.choice([1, 3, 9]))
        errored = rng.random() < 0.03
        tid = f"{i:05d}"
        for e in range(1, ran + 1):
            acc = quality - 0.3 * math.exp(-e / 2) + 0.01 * rng.standard_normal()
            hist.append({"trial_id": tid, "training_iteration": e, "val_acc": acc,
                         "energy_mj": energy, "timestamp": 1e9 + i * 10 + e})
        acc = hist[-1]["val_acc"]
        row = {"trial_id": tid, "status": "errored" if errored else "completed"
               if ran == planned else "stopped early",
               "error": "ValueError: lr exploded" if errored else None, "epochs_run": ran,
               "time_total_s": 3.0 * ran, "path": str(out / f"t{tid}"), "best_val_acc": acc,
               "best_epoch": ran, **{f"config/{k}": v for k, v in cfg.items()},
               "last/val_acc": acc, "last/energy_mj": energy, "last/epoch_time_s": 3.0,
               "last/train_images_per_s": 900.0}
        if ran == planned:
            row["last/test_acc"] = acc - 0.002
        if not ann:
            row.update({f"last/firing_rate/layer{j}": float(rng.random()) for j in range(8)})
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    write_table(rows, str(out))
    pd.DataFrame(hist).to_parquet(out / HISTORY_FILE)
    (out / "sweep.json").write_text(json.dumps({
        "metric": "val_acc", "mode": "max", "objectives": [], "task": "mnist", "name": "bench"}))
    (out / "space.yaml").write_text(yaml.safe_dump(space.to_dict(), sort_keys=False))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    from snnsearch.report import main as report_main

    tmp = Path(tempfile.mkdtemp(prefix="snnsearch_report_bench_"))
    try:
        shaped_sweep(tmp / "sweep", args.trials)
        times, cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            assert report_main([str(tmp / "sweep"), "--top", "5"]) == 0
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        size = (tmp / "sweep" / "report.html").stat().st_size / 1e6
        # CPU time of this (single-threaded) process is what the machine's load cannot inflate;
        # wall time is what a user waits. The first repeat includes the lazy imports.
        print(f"{args.trials} trials: wall {', '.join(f'{t:.2f}' for t in times)} s, CPU "
              f"{', '.join(f'{t:.2f}' for t in cpu)} s; load avg {os.getloadavg()[0]:.1f}; "
              f"report.html {size:.2f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
