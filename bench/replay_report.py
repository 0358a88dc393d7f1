"""Anytime hypervolume, paired Wilcoxon tests and silent-recovery counts for ``bench/replay.py``.

Stated before the runs (docs/benchmarks.md, "Issue 11"):

* objectives ``val_acc`` (max) and ``energy_mj`` (min), energy on a log10 axis;
* reference point: ``val_acc`` 0.1 (chance for 10 classes) and the energy of the most expensive
  ANN twin in the recorded grid (an SNN that costs more than that ANN adds nothing); energies
  below ``reference / 10**4`` count as that floor, so the box is 0.9 x 4 decades and the
  hypervolume is reported as a fraction of it;
* every reported epoch is a point (each has a checkpoint a user could deploy), counted from
  the moment it is reported, so the anytime curve is over trial-epochs spent;
* final hypervolume = at the budget; the paired Wilcoxon signed-rank test (two-sided, pairs by
  seed) compares arms' final hypervolumes.

    python bench/replay_report.py --runs bench/results/replay_c1.parquet \
        --runs-c4 bench/results/replay_c4.parquet --plot docs/figures/replay_hv.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHANCE = 0.1
DECADES = 4.0
FIFO = "tpe_fifo"
TARGET = "moasha_crowd_silence"


def reference(table: Any) -> tuple[float, float]:
    """(val_acc, energy_mj) reference: chance and the costliest ANN twin of the grid."""
    return CHANCE, float(table["ann_energy_mj"].max())


def to_points(acc: np.ndarray, mj: np.ndarray, ref_mj: float) -> np.ndarray:
    """Minimisation points (-val_acc, log10 energy) with the energy floor applied."""
    floor = ref_mj / 10**DECADES
    return np.column_stack([-np.asarray(acc, float), np.log10(np.maximum(mj, floor))])


def curves(runs: Any, ref: tuple[float, float], budget: int) -> dict[str, np.ndarray]:
    """``arm -> (seeds, budget)`` normalised anytime hypervolume."""
    from snnsearch.search.pareto import hypervolume_curve

    ref_pt = np.array([-ref[0], math.log10(ref[1])])
    box = (1.0 - ref[0]) * DECADES
    out: dict[str, list[np.ndarray]] = {}
    for (arm, _seed), g in runs.groupby(["arm", "seed"], sort=True):
        g = g.sort_values("step")
        pts = to_points(g["val_acc"].to_numpy(), g["energy_mj"].to_numpy(), ref[1])
        steps = g["step"].to_numpy()
        hv_at_result = hypervolume_curve(pts, ref_pt) / box
        curve = np.zeros(budget)
        for t in range(1, budget + 1):  # hypervolume after t trial-epochs
            k = int(np.searchsorted(steps, t, side="right"))
            curve[t - 1] = hv_at_result[k - 1] if k else 0.0
        out.setdefault(arm, []).append(curve)
    return {arm: np.stack(c) for arm, c in out.items()}


def silent_recovery(table: Any) -> dict[str, int]:
    """Recorded configurations the silence stopper (default thresholds, from epoch 1) would
    stop, and how many of those ended (epoch 5) above 0.5 / above the median final accuracy."""
    from snnsearch.search.silence import silence_verdict
    from snnsearch.testing.replay import epoch_metrics

    last = table.groupby("config_id")["epoch"].transform("max") == table["epoch"]
    median_final = float(table.loc[last, "val_acc"].median())
    flagged = recovered = recovered_median = saturated = 0
    first_epoch: dict[int, int] = {}
    for _cid, g in table.sort_values("epoch").groupby("config_id"):
        rows = g.to_dict("records")
        verdicts = [silence_verdict(epoch_metrics(r)) for r in rows]
        if not any(verdicts):
            continue
        flagged += 1
        first = next(i for i, v in enumerate(verdicts) if v) + 1
        first_epoch[first] = first_epoch.get(first, 0) + 1
        saturated += "saturated" in verdicts
        final = rows[-1]["val_acc"]
        recovered += final >= 0.5
        recovered_median += final >= median_final
    return {"configs": int(table["config_id"].nunique()), "flagged": flagged,
            "flagged_saturated": saturated, "recovered_to_0.5": recovered,
            "recovered_to_median": recovered_median, "median_final_acc": round(median_final, 4),
            "first_flag_epoch": {str(k): v for k, v in sorted(first_epoch.items())}}


def stopped_recovery(runs: Any, table: Any) -> dict[str, dict[str, int]]:
    """Per silence arm: trials the stopper ended, and how many of their configurations reach
    val_acc >= 0.5 at the last recorded epoch (would have recovered had they run on)."""
    final = table[table["epoch"] == table["epoch"].max()].set_index("config_id")["val_acc"]
    out = {}
    for arm, g in runs[runs["stop_reason"] != ""].groupby("arm"):
        trials = g.drop_duplicates(["seed", "trial_id"])
        out[arm] = {"stopped_trials": len(trials),
                    "would_recover_to_0.5": int((final.loc[trials["config_id"]] >= 0.5).sum())}
    return out


def summarise(hv: dict[str, np.ndarray], budget: int) -> list[dict[str, Any]]:
    """Per arm: final hypervolume quartiles, Wilcoxon p against FIFO and the target arm, and the
    trial-epochs needed to reach the same seed's TPE+FIFO final hypervolume."""
    from scipy.stats import wilcoxon

    fifo_final = hv[FIFO][:, -1]
    rows = []
    for arm, c in hv.items():
        final = c[:, -1]
        reach = []
        for s in range(c.shape[0]):
            hit = np.flatnonzero(c[s] >= fifo_final[s] - 1e-12)
            reach.append(int(hit[0]) + 1 if hit.size else math.inf)
        row = {
            "arm": arm, "seeds": c.shape[0], "hv_median": float(np.median(final)),
            "hv_q1": float(np.quantile(final, 0.25)), "hv_q3": float(np.quantile(final, 0.75)),
            "reach_fifo_median_epochs": float(np.median(reach)),
            "reach_fifo_share": float(np.mean(np.isfinite(reach))),
            # The goal: FIFO's final hypervolume within 40 % of FIFO's trial-epochs.
            "reach_fifo_within_40pct_share": float(np.mean(np.asarray(reach) <= 0.4 * budget)),
        }
        for other in (FIFO, TARGET):
            if other in hv and other != arm and hv[other].shape[0] == c.shape[0]:
                diff = final - hv[other][:, -1]
                p = float(wilcoxon(final, hv[other][:, -1]).pvalue) if np.any(diff) else 1.0
                row[f"p_vs_{other}"] = p
                row[f"wins_vs_{other}"] = int(np.sum(diff > 0))
        rows.append(row)
    return rows


def plot(hv: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for arm, c in hv.items():
        x = np.arange(1, c.shape[1] + 1)
        med = np.median(c, axis=0)
        line = ax.plot(x, med, label=arm, lw=1.6 if "moasha" in arm else 1.1,
                       ls="-" if "silence" in arm or "fifo" in arm else "--")[0]
        ax.fill_between(x, np.quantile(c, 0.25, axis=0), np.quantile(c, 0.75, axis=0),
                        color=line.get_color(), alpha=0.12)
    ax.set_xlabel("trial-epochs spent")
    ax.set_ylabel("hypervolume (fraction of box)")
    ax.set_title("Replay on recorded MNIST curves: median and IQR over seeds")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def to_markdown(out: dict[str, Any]) -> str:
    """The per-arm table of docs/benchmarks.md."""
    lines = ["| arm | seeds | final HV median [IQR] | wins / p vs tpe_fifo | wins / p vs "
             f"{TARGET} | t-e to reach tpe_fifo's final HV: median (share reached, share "
             "<= 40 %) |", "|---|---|---|---|---|---|"]
    for a in sorted(out["arms"], key=lambda r: -r["hv_median"]):
        def cmp(other: str) -> str:
            if f"p_vs_{other}" not in a:
                return "-"
            return f"{a[f'wins_vs_{other}']}/{a['seeds']}, p={a[f'p_vs_{other}']:.3g}"
        reach = a["reach_fifo_median_epochs"]
        lines.append(
            f"| {a['arm']} | {a['seeds']} | {a['hv_median']:.4f} [{a['hv_q1']:.4f}, "
            f"{a['hv_q3']:.4f}] | {cmp(FIFO)} | {cmp(TARGET)} | "
            f"{'never' if math.isinf(reach) else f'{reach:g}'} ({a['reach_fifo_share']:.0%}, "
            f"{a['reach_fifo_within_40pct_share']:.0%}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default=str(ROOT / "bench" / "replay_mnist.parquet"))
    p.add_argument("--runs", type=Path, nargs="+", required=True)
    p.add_argument("--runs-c4", type=Path)
    p.add_argument("--plot", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    import pyarrow.parquet as pq

    table = pq.read_table(args.table).to_pandas()
    parts, seen = [], set()
    for path in args.runs:  # several processes may share seeds: keep each (arm, seed) once
        df = pd.read_parquet(path)
        keys = set(zip(df["arm"], df["seed"]))
        parts.append(df[[k not in seen for k in zip(df["arm"], df["seed"])]])
        seen |= keys
    runs = pd.concat(parts, ignore_index=True)
    complete = runs.groupby("seed")["arm"].nunique()
    runs = runs[runs["seed"].isin(complete[complete == runs["arm"].nunique()].index)]
    budget_meta = json.loads(pq.read_table(args.runs[0]).schema.metadata[b"snnsearch_replay_runs"])
    budget = int(budget_meta["args"]["budget"])
    runs = runs[runs["step"] <= budget]
    ref = reference(table)
    hv = curves(runs, ref, budget)
    out: dict[str, Any] = {"reference": {"val_acc": ref[0], "energy_mj": ref[1]},
                           "budget": budget, "arms": summarise(hv, budget),
                           "silence": silent_recovery(table)}
    out["silence"]["stopped_per_arm"] = stopped_recovery(runs, table)
    if args.runs_c4:
        c4 = pd.read_parquet(args.runs_c4)
        hv4 = curves(c4[c4["step"] <= budget], ref, budget)
        out["concurrency4"] = {arm: float(c[:, -1].mean()) for arm, c in hv4.items()}
        seeds = sorted(c4["seed"].unique())
        out["concurrency1_same_seed"] = {
            arm: float(np.mean([hv[arm][s, -1] for s in seeds])) for arm in hv4 if arm in hv}
    if args.plot:
        plot(hv, args.plot)
    out["markdown"] = to_markdown(out)
    text = json.dumps(out, indent=1)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
