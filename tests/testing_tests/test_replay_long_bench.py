"""``bench/replay_long.py`` and its report run end to end (on the small MNIST recording)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_long_replay_bench_and_report(tmp_path: Path) -> None:
    """Three arms (ours with epoch and cost rungs, the Syne Tune peer) x two seeds under a
    compute-second budget: every sweep stops at the budget, the report's table has every arm and
    tpe_fifo reaches its own final hypervolume within the budget."""
    runs, out = tmp_path / "runs.parquet", tmp_path / "report.json"
    common = ["--table", str(ROOT / "bench" / "replay_mnist.parquet")]
    subprocess.run([sys.executable, str(ROOT / "bench" / "replay_long.py"), *common,
                    "--space", str(ROOT / "snnsearch" / "testing" / "replay_mnist.yaml"),
                    "--arms", "tpe_fifo,moasha_cost,synetune_moasha", "--seeds", "2",
                    "--max-t", "5", "--budget-curves", "6", "--out", str(runs)],
                   check=True, capture_output=True, text=True, timeout=300)
    import pandas as pd
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_table(runs).schema.metadata[b"snnsearch_replay_long"])
    trace = pd.read_parquet(runs)
    for (_arm, _seed), g in trace.groupby(["arm", "seed"]):
        spent = g.sort_values("step")["spent_s"].to_numpy()
        assert spent[-1] >= meta["budget_s"] > spent[-2]
    subprocess.run([sys.executable, str(ROOT / "bench" / "replay_long_report.py"), *common,
                    "--runs", str(runs), "--json", str(out)],
                   check=True, capture_output=True, text=True, timeout=300)
    report = json.loads(out.read_text())
    arms = {r["arm"]: r for r in report["arms"]}
    assert set(arms) == {"tpe_fifo", "moasha_cost", "synetune_moasha"}
    assert arms["tpe_fifo"]["reach_fifo_median_share"] <= 1.0
    assert "p_vs_synetune_moasha" in arms["moasha_cost"]
