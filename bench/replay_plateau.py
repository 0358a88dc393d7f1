"""A front-plateau stopper, evaluated exactly and after the fact on ``bench/replay_long.py`` traces.

A stopper that only ends the whole sweep changes no decision before it fires, so its effect on a
recorded trace is exact: the sweep would have ended at the first result where the hypervolume
had not grown by more than ``tol`` (relative) over the last ``window`` x B compute seconds. Prints,
per arm, the compute saved and the hypervolume lost against running to B (median and worst
seed). Issue 22, part 4 (docs/benchmarks.md).

    python bench/replay_plateau.py bench/results/long_report.parquet
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay_long_report import curves, reference

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("moasha_cost_cheap_hvc", "synetune_moasha", "tpe_fifo")


def stop_point(spent: np.ndarray, hv: np.ndarray, budget_s: float, window: float,
               tol: float) -> tuple[float, float]:
    """(compute at which the stopper fires, hypervolume there); (last spent, final HV) if never."""
    for i, t in enumerate(spent):
        if t < window * budget_s:
            continue
        j = int(np.searchsorted(spent, t - window * budget_s, side="right")) - 1
        if hv[i] <= (hv[j] if j >= 0 else 0.0) * (1 + tol):
            return float(t), float(hv[i])
    return float(spent[-1]), float(hv[-1])


def main(argv: list[str]) -> int:
    runs_path = argv[0]
    meta = json.loads(pq.read_table(runs_path).schema.metadata[b"snnsearch_replay_long"])
    budget_s = meta["budget_s"]
    table = pq.read_table(ROOT / "bench" / "replay_fashion.parquet").to_pandas()
    _, _, traces = curves(pd.read_parquet(runs_path), reference(table), budget_s)
    for window in (0.15, 0.25):
        for tol in (0.0, 0.005):
            for arm in ARMS:
                saved, lost = [], []
                for spent, hv, _ in traces[arm].values():
                    at, hv_at = stop_point(spent, hv, budget_s, window, tol)
                    saved.append(1 - min(at, budget_s) / budget_s)
                    lost.append(hv[-1] - hv_at)
                print(f"window {window} B, tol {tol}: {arm}: compute saved median "
                      f"{np.median(saved):.2f}; HV lost median {np.median(lost):.4f}, "
                      f"worst seed {np.max(lost):.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
