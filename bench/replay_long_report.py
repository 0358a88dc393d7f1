"""Anytime hypervolume against compute seconds and trial-epochs for ``bench/replay_long.py``.

Stated before the runs (docs/benchmarks.md, "Issue 22"), with the objectives, reference point and
energy floor of ``bench/replay_report.py`` (val_acc max, energy_mj min on a log axis, reference:
chance and the costliest ANN twin of the recording, hypervolume as a fraction of the box):

* budget B = the runs' ``budget_s`` (compute seconds: recorded CPU seconds of every epoch run);
* every reported epoch is a point, counted once the sweep has spent the compute up to it;
* reach: the compute at which an arm's hypervolume first equals the same seed's ``tpe_fifo``
  hypervolume at B; the goal is reach <= 0.4 B (median over seeds, share of seeds, and a
  one-sided paired Wilcoxon test that the arm's hypervolume at 0.4 B exceeds ``tpe_fifo``'s at
  B, p < 0.05);
* against the peer: the paired two-sided Wilcoxon test of final hypervolumes at B.

    python bench/replay_long_report.py --runs bench/results/long_report.parquet \
        --plot docs/figures/replay_long_hv.png --json bench/results/long_report.json
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

from replay_report import DECADES, reference, to_points

FIFO = "tpe_fifo"
PEER = "synetune_moasha"
GRID = 200  # points of the seconds axis
PLOTTED = ("tpe_fifo", "random_fifo", "nsga2_fifo", "tpe_asha", "moasha_crowd", "moasha_cost",
           "moasha_cost_cheap_hvc", "moasha_cheap_eps_silence", "synetune_moasha",
           "synetune_moasha_shipped")


def hv_trace(g: Any, ref: tuple[float, float]) -> np.ndarray:
    """Normalised hypervolume after each result of one sweep (rows in step order)."""
    from snnsearch.search.pareto import hypervolume_curve

    ref_pt = np.array([-ref[0], math.log10(ref[1])])
    pts = to_points(g["val_acc"].to_numpy(), g["energy_mj"].to_numpy(), ref[1])
    return hypervolume_curve(pts, ref_pt) / ((1.0 - ref[0]) * DECADES)


def curves(runs: Any, ref: tuple[float, float], budget_s: float) -> tuple[dict, dict, dict]:
    """Per arm: (seeds, GRID) hypervolume on the seconds grid, (seeds,) reach-ready traces and
    the per-result (spent_s, hv) traces."""
    grid = np.linspace(budget_s / GRID, budget_s, GRID)
    on_grid: dict[str, list[np.ndarray]] = {}
    traces: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for (arm, seed), g in runs.groupby(["arm", "seed"], sort=True):
        g = g.sort_values("step")
        hv = hv_trace(g, ref)
        spent = g["spent_s"].to_numpy()
        k = np.searchsorted(spent, grid, side="right")
        on_grid.setdefault(arm, []).append(np.where(k > 0, hv[np.maximum(k - 1, 0)], 0.0))
        traces.setdefault(arm, {})[int(seed)] = (spent, hv, g["step"].to_numpy())
    return grid, {a: np.stack(c) for a, c in on_grid.items()}, traces


def hv_at(trace: tuple[np.ndarray, np.ndarray, np.ndarray], seconds: float) -> float:
    spent, hv, _ = trace
    k = int(np.searchsorted(spent, seconds, side="right"))
    return float(hv[k - 1]) if k else 0.0


def reach_s(trace: tuple[np.ndarray, np.ndarray, np.ndarray], target: float) -> float:
    spent, hv, _ = trace
    hit = np.flatnonzero(hv >= target - 1e-12)
    return float(spent[hit[0]]) if hit.size else math.inf


def summarise(traces: dict, budget_s: float) -> list[dict[str, Any]]:
    from scipy.stats import wilcoxon

    seeds = sorted(traces[FIFO])
    fifo_final = np.array([hv_at(traces[FIFO][s], budget_s) for s in seeds])
    rows = []
    for arm, by_seed in traces.items():
        if sorted(by_seed) != seeds:
            continue
        final = np.array([hv_at(by_seed[s], budget_s) for s in seeds])
        at40 = np.array([hv_at(by_seed[s], 0.4 * budget_s) for s in seeds])
        reach = np.array([reach_s(by_seed[s], f) for s, f in zip(seeds, fifo_final)]) / budget_s
        row: dict[str, Any] = {
            "arm": arm, "seeds": len(seeds), "hv_median": float(np.median(final)),
            "hv_q1": float(np.quantile(final, 0.25)), "hv_q3": float(np.quantile(final, 0.75)),
            "reach_fifo_median_share": float(np.median(reach)),
            "reach_fifo_within_40pct_share": float(np.mean(reach <= 0.4)),
            "results_median": float(np.median([len(by_seed[s][0]) for s in seeds])),
        }
        diff = at40 - fifo_final
        row["p_at40_gt_fifo_final"] = (float(wilcoxon(at40, fifo_final, alternative="greater")
                                             .pvalue) if np.any(diff) else 1.0)
        for other in (FIFO, PEER):
            if other in traces and other != arm and sorted(traces[other]) == seeds:
                ofinal = np.array([hv_at(traces[other][s], budget_s) for s in seeds])
                d = final - ofinal
                row[f"p_vs_{other}"] = float(wilcoxon(final, ofinal).pvalue) if np.any(d) else 1.0
                row[f"wins_vs_{other}"] = int(np.sum(d > 0))
                row[f"losses_vs_{other}"] = int(np.sum(d < 0))
        rows.append(row)
    return sorted(rows, key=lambda r: -r["hv_median"])


def plot(grid: np.ndarray, hv: dict[str, np.ndarray], traces: dict, path: Path,
         budget_s: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.4), dpi=110)
    for arm, c in sorted(hv.items()):
        style = {"lw": 1.8 if arm in (FIFO, PEER) or "cost" in arm else 1.0,
                 "ls": "-" if "moasha" in arm or arm == FIFO else "--"}
        line = a1.plot(grid / budget_s, np.median(c, axis=0), label=arm, **style)[0]
        a1.fill_between(grid / budget_s, np.quantile(c, 0.25, axis=0),
                        np.quantile(c, 0.75, axis=0), color=line.get_color(), alpha=0.08)
        # trial-epochs axis: median over seeds of the hypervolume after n results
        longest = max(len(t[0]) for t in traces[arm].values())
        n = np.unique(np.linspace(1, longest, 150).astype(int))
        per_seed = [np.where(n <= len(t[1]), t[1][np.minimum(n, len(t[1])) - 1], np.nan)
                    for t in traces[arm].values()]
        stacked = np.stack(per_seed)
        running = np.sum(np.isfinite(stacked), axis=0) >= 0.5 * stacked.shape[0]
        a2.plot(n[running], np.nanmedian(stacked[:, running], axis=0), color=line.get_color(),
                **style)
    a1.axvline(0.4, color="grey", lw=0.8, ls=":")
    a1.set_xlabel("compute spent / budget (recorded CPU seconds)")
    a1.set_ylabel("hypervolume (fraction of box)")
    a2.set_xlabel("trial-epochs reported")
    a2.set_xscale("log")
    a1.set_title(title, fontsize=9)
    a2.set_title("same sweeps against trial-epochs (median while >= half the seeds run)",
                 fontsize=9)
    a1.legend(fontsize=6.5, ncol=2, loc="lower right")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    header = ("| arm | seeds | final HV median [IQR] | vs tpe_fifo (wins/losses, p) | vs "
              f"{PEER} (wins/losses, p) | reach tpe_fifo's final HV: median share of B "
              "(share of seeds <= 0.4 B) | p: HV(0.4 B) > tpe_fifo HV(B) | results |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    def cmp(a: dict[str, Any], other: str) -> str:
        if f"p_vs_{other}" not in a:
            return "-"
        return f"{a[f'wins_vs_{other}']}/{a[f'losses_vs_{other}']}, p={a[f'p_vs_{other}']:.3g}"

    for a in rows:
        reach = a["reach_fifo_median_share"]
        lines.append(
            f"| {a['arm']} | {a['seeds']} | {a['hv_median']:.4f} [{a['hv_q1']:.4f}, "
            f"{a['hv_q3']:.4f}] | {cmp(a, FIFO)} | {cmp(a, PEER)} | "
            f"{'never' if math.isinf(reach) else f'{reach:.2f}'} "
            f"({a['reach_fifo_within_40pct_share']:.0%}) | {a['p_at40_gt_fifo_final']:.3g} | "
            f"{a['results_median']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd
    import pyarrow.parquet as pq

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default=str(ROOT / "bench" / "replay_fashion.parquet"))
    p.add_argument("--runs", type=Path, nargs="+", required=True)
    p.add_argument("--plot", type=Path)
    p.add_argument("--title", default="Long FashionMNIST curves: median and IQR over seeds")
    p.add_argument("--json", type=Path)
    p.add_argument("--plot-arms", default=",".join(PLOTTED),
                   help="arms drawn in the plot (the table has all)")
    args = p.parse_args(argv)
    table = pq.read_table(args.table).to_pandas()
    metas = [json.loads(pq.read_table(r).schema.metadata[b"snnsearch_replay_long"])
             for r in args.runs]
    budgets = {round(m["budget_s"], 6) for m in metas}
    if len(budgets) != 1:
        p.error(f"--runs were made with different budgets {sorted(budgets)}")
    budget_s = metas[0]["budget_s"]
    runs = pd.concat([pd.read_parquet(r) for r in args.runs], ignore_index=True)
    runs = runs.drop_duplicates(["arm", "seed", "step"])
    ref = reference(table)
    grid, hv, traces = curves(runs, ref, budget_s)
    rows = summarise(traces, budget_s)
    out = {"reference": {"val_acc": ref[0], "energy_mj": ref[1]}, "budget_s": budget_s,
           "rungs": metas[0]["rungs"], "seeds": sorted(int(s) for s in runs["seed"].unique()),
           "arms": rows, "markdown": to_markdown(rows)}
    if args.plot:
        shown = [a for a in args.plot_arms.split(",") if a in hv]
        plot(grid, {a: hv[a] for a in shown}, {a: traces[a] for a in shown}, args.plot,
             budget_s, args.title)
    text = json.dumps(out, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(out["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
