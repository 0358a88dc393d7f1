"""Report figures about outcomes: the accuracy (or abs_rel) – energy front with ANN baselines,
the hypervolume over trial-epochs, learning curves of the top trials and the per-layer
firing-rate breakdown of the best trials. Every figure function returns PNG bytes.

ANN baselines (``*_ann`` models, the plain ResNet depth encoder, ``relu`` neurons) are reference
points, not candidates: the front is that of the spiking trials, and each ANN trial is drawn as a
star so the plot answers "what does the SNN's energy saving cost in accuracy?".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from snnsearch.reporting.figures import ARROW, new_figure, png
from snnsearch.search.pareto import as_minimization, hypervolume, pareto_mask

if TYPE_CHECKING:
    import pandas as pd

FIRING_PREFIX = "last/firing_rate/"


def ann_mask(table: pd.DataFrame) -> np.ndarray:
    """True for ANN-baseline trials."""
    mask = np.zeros(len(table), dtype=bool)
    if "config/model" in table:
        mask |= table["config/model"].astype(str).str.endswith("_ann").to_numpy()
    if "config/encoder" in table:
        mask |= (table["config/encoder"].astype(str) == "resnet").to_numpy()
    if "config/neuron" in table:
        mask |= (table["config/neuron"].astype(str) == "relu").to_numpy()
    return mask


def ann_baselines(table: pd.DataFrame, y: str, mode: str) -> pd.DataFrame:
    """The best completed ANN trial per ANN model (the baseline each SNN is measured against)."""
    ann = table[ann_mask(table) & (table.get("status") == "completed").to_numpy()]
    ann = ann[ann[y].notna()]
    if ann.empty:
        return ann
    name = _model_name(ann)
    ann = ann.assign(_model=name).sort_values(y, ascending=mode == "min", kind="stable")
    return ann.drop_duplicates("_model").drop(columns="_model")


def _model_name(rows: pd.DataFrame) -> pd.Series:
    for col in ("config/model", "config/encoder"):
        if col in rows:
            return rows[col].astype(str)
    return rows["trial_id"].map(lambda _: "ANN")


def front_columns(table: pd.DataFrame, metric: str) -> tuple[str, str] | None:
    """(y, x) columns of the front plot: the metric's value and ``last/energy_mj``."""
    from snnsearch.reporting.importance import objective_column

    y = objective_column(table, metric)
    x = "last/energy_mj"
    return (y, x) if y is not None and x in table and table[x].notna().any() else None


def snn_front(table: pd.DataFrame, y: str, mode: str, x: str = "last/energy_mj"
              ) -> pd.DataFrame:
    """Completed, non-silent spiking trials on the (y: mode, x: min) front, sorted by x."""
    cand = table[(table.get("status") == "completed").to_numpy() & ~ann_mask(table)]
    cand = cand[np.isfinite(cand[[y, x]].astype(float).to_numpy()).all(axis=1)]
    if cand.empty:
        return cand
    pts = as_minimization(cand[[y, x]].astype(float).to_numpy(), [mode, "min"])
    return cand.loc[pareto_mask(pts)].sort_values(x)


def front_figure(table: pd.DataFrame, metric: str, mode: str) -> bytes | None:
    """All trials (grey), the SNN front (joined, coloured by T), ANN baselines (stars)."""
    cols = front_columns(table, metric)
    if cols is None:
        return None
    y, x = cols
    front = snn_front(table, y, mode, x)
    ann = table[ann_mask(table) & table[y].notna().to_numpy() & table[x].notna().to_numpy()]
    best_ann = ann_baselines(table, y, mode)
    rest = table[~ann_mask(table)]
    fig = new_figure(7.6, 5.0)
    ax = fig.add_subplot()
    ax.scatter(rest[x], rest[y], s=12, c="0.75", label="spiking trials")
    if not front.empty:
        ax.plot(front[x], front[y], c="0.25", lw=0.9, drawstyle="steps-post" if mode == "max"
                else "steps-pre", zorder=2)
        # Colour by T only when the front has several T values (one value: a bar of one colour).
        colour = front["config/T"] if "config/T" in front and front["config/T"].notna().all() \
            and front["config/T"].nunique() > 1 else None
        points = ax.scatter(front[x], front[y], s=40, c=colour, zorder=3, edgecolors="k",
                            linewidths=0.5, label="SNN front",
                            **({"cmap": "viridis"} if colour is not None else {}))
        if colour is not None:
            fig.colorbar(points, ax=ax, label="T (timesteps)", fraction=0.04)
    if len(ann):  # every ANN trial faint, the best per ANN model as a labelled star
        ax.scatter(ann[x], ann[y], marker="*", s=30, c="tab:red", alpha=0.3, linewidths=0,
                   label="ANN trials")
    xs = table[x].astype(float).dropna()
    log_x = bool(len(xs)) and xs.min() > 0 and xs.max() / xs.min() > 20
    if log_x:
        ax.set_xscale("log")
    for _, row in best_ann.iterrows():
        ax.scatter(row[x], row[y], marker="*", s=220, c="tab:red", edgecolors="k",
                   linewidths=0.6, zorder=4)
        name = row.get("config/model", row.get("config/encoder", "ANN"))
        right = _fraction(float(row[x]), xs, log_x) > 0.5  # label towards the plot's middle
        ax.annotate(f"{name} {row[y]:.4g}", (row[x], row[y]), fontsize=8, weight="bold",
                    xytext=(-8 if right else 8, 6), textcoords="offset points",
                    ha="right" if right else "left", zorder=5)
    if len(best_ann):
        ax.scatter([], [], marker="*", s=120, c="tab:red", edgecolors="k",
                   label="best ANN per model (baseline)")
    ax.set_xlabel("energy per image (mJ, ↓ better)")
    ax.set_ylabel(f"{metric} ({ARROW[mode]})")
    ax.set_title(f"{metric} vs energy: {len(front)} spiking trials on the front; "
                 f"{len(best_ann)} ANN baselines ({len(ann)} ANN trials)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return png(fig)


def _fraction(value: float, xs: pd.Series, log: bool) -> float:
    low, high = float(xs.min()), float(xs.max())
    if log:
        value, low, high = np.log10(value), np.log10(low), np.log10(high)
    return (value - low) / (high - low) if high > low else 0.5


def hypervolume_curve(history: pd.DataFrame, objectives: Sequence[tuple[str, str]],
                      reference: Sequence[float] | None, exclude: Sequence[str] = ()
                      ) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]] | None:
    """Hypervolume of everything reported so far, after each trial-epoch (in arrival order).

    Args:
        history: per-epoch rows (:mod:`snnsearch.reporting.history`).
        objectives: ``(metric, mode)`` pairs, e.g. ``val_acc:max, energy_mj:min``.
        reference: raw-unit reference point; None: the worst value seen per objective (then
            the curve shows progress within this sweep only).
        exclude: trial ids left out (errored trials, ANN baselines).

    Returns:
        ``(trial_epochs, hypervolumes, reference)`` or None without data.
    """
    names = [m for m, _ in objectives]
    if history.empty or any(n not in history for n in names):
        return None
    rows = history[~history["trial_id"].isin(list(exclude))]
    order = "timestamp" if "timestamp" in rows else "training_iteration"
    rows = rows.sort_values([order, "training_iteration"], kind="stable")
    raw = rows[names].astype(float).to_numpy()
    raw = raw[np.isfinite(raw).all(axis=1)]
    if len(raw) == 0:
        return None
    modes = [m for _, m in objectives]
    if reference is None:
        worst = [raw[:, i].min() if m == "max" else raw[:, i].max() for i, m in enumerate(modes)]
        reference = tuple(float(v) for v in worst)
    ref_min = as_minimization(np.array([reference], dtype=float), modes)[0]
    pts = as_minimization(raw, modes)
    front = np.empty((0, len(names)))
    values = np.empty(len(pts))
    for i, point in enumerate(pts):  # incremental: only the running front is kept
        if not (front <= point).all(axis=1).any():
            front = np.vstack([front[~(point <= front).all(axis=1)], point])
        values[i] = hypervolume(front, list(ref_min)) if len(front) else 0.0
    return np.arange(1, len(pts) + 1), values, tuple(reference)


def hypervolume_figure(curve: tuple[np.ndarray, np.ndarray, tuple[float, ...]],
                       objectives: Sequence[tuple[str, str]]) -> bytes:
    """The hypervolume curve with its reference point in the title."""
    steps, values, ref = curve
    fig = new_figure(6.0, 3.0)
    ax = fig.add_subplot()
    ax.plot(steps, values, c="tab:green", drawstyle="steps-post")
    ax.set_xlabel("trial-epochs reported")
    ax.set_ylabel("hypervolume")
    objs = ", ".join(f"{m}:{d}" for m, d in objectives)
    ax.set_title(f"hypervolume of ({objs}) w.r.t. {tuple(round(r, 4) for r in ref)}",
                 fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return png(fig)


def learning_curves(history: pd.DataFrame, trial_ids: Sequence[str],
                    metrics: Sequence[tuple[str, str]], labels: dict[str, str]) -> bytes | None:
    """One panel per metric, one line per top trial (label: rank and key parameters)."""
    metrics = [(m, d) for m, d in metrics if m in history]
    rows = history[history["trial_id"].isin(list(trial_ids))]
    if rows.empty or not metrics:
        return None
    fig = new_figure(5.0 * len(metrics), 3.4)
    for k, (metric, mode) in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        for trial_id in trial_ids:
            one = rows[rows["trial_id"] == trial_id].sort_values("training_iteration")
            if one[metric].notna().any():
                ax.plot(one["training_iteration"], one[metric], marker="o", ms=3,
                        label=labels.get(trial_id, trial_id))
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{metric} ({ARROW[mode]})")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=6.5)
    fig.tight_layout()
    return png(fig)


def layer_rates_figure(table: pd.DataFrame, trial_ids: Sequence[str],
                       labels: dict[str, str]) -> bytes | None:
    """Grouped bars of the last per-layer firing rates of the given (best) trials."""
    cols = [c for c in table.columns if c.startswith(FIRING_PREFIX)]
    rows = table[table["trial_id"].isin(list(trial_ids))]
    rows = rows[rows[cols].notna().any(axis=1)] if cols else rows.iloc[:0]
    if rows.empty:
        return None
    cols = [c for c in cols if rows[c].notna().any()]
    fig = new_figure(max(6.0, 0.55 * len(cols) * max(len(rows), 1) / 2 + 2), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / len(rows)
    for i, (_, row) in enumerate(rows.iterrows()):
        ax.bar(np.arange(len(cols)) + i * width, row[cols].astype(float), width,
               label=labels.get(row["trial_id"], row["trial_id"]))
    ax.set_xticks(np.arange(len(cols)) + 0.4 - width / 2,
                  [c.removeprefix(FIRING_PREFIX) for c in cols], rotation=35, ha="right",
                  fontsize=7)
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    ax.set_title("per-layer firing rates at the last epoch", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return png(fig)
