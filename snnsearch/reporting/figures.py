"""Report figures about the hyperparameters: importance bars, each objective against each
parameter, and parallel coordinates. Every function returns PNG bytes.

matplotlib, not plotly: it is already a dependency, renders headless in CI, and a page of a dozen
PNGs embedded as data URIs stays a few hundred KB and opens offline; a self-contained plotly page
carries its 3.5 MB JavaScript bundle and a new dependency. The price is no hover or brushing,
which the MLflow UI offers on the same runs.

Axes follow the search space (:class:`~snnsearch.reporting.params.ParamInfo`): a categorical
parameter gets one tick per category in declared order with the axis fixed to all of them (jitter
cannot push a tick off the axis), a log-scale parameter a log axis with at most one label per
decade, an int parameter integer ticks; a conditional parameter's inactive trials sit at ``n/a``.
Bare ``Figure`` objects (no pyplot), so no global matplotlib state is touched.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from snnsearch.reporting.params import INACTIVE, ParamInfo, label, level_labels

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from snnsearch.reporting.importance import Importance

STATUS_COLOURS = {"completed": "tab:blue", "stopped early": "tab:orange",
                  "silent": "tab:gray", "saturated": "tab:purple", "errored": "tab:red"}
ARROW = {"max": "↑ better", "min": "↓ better"}


def new_figure(width: float, height: float) -> Figure:
    """A Figure on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=80)
    FigureCanvasAgg(fig)
    return fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (layout is the caller's: ``tight_layout`` costs as much as the
    drawing, so the big grids place their subplots by hand)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def positions(ax: Axes, param: ParamInfo, values: pd.Series, *, axis: str = "x") -> np.ndarray:
    """Plot coordinates of ``values`` on ``param``'s axis, with that axis's scale and ticks set.

    Categorical (and non-numeric) parameters map to 0..n-1 in declared order; numeric ones keep
    their values (NaN for inactive trials). Returns float coordinates.
    """
    from matplotlib.ticker import LogLocator, MaxNLocator

    set_scale = ax.set_xscale if axis == "x" else ax.set_yscale
    target = ax.xaxis if axis == "x" else ax.yaxis
    if param.categorical or not _numeric(values):
        levels = level_labels(param, list(values))
        index = {lab: i for i, lab in enumerate(levels)}
        coords = np.array([index[label(v)] for v in values], dtype=float)
        (ax.set_xticks if axis == "x" else ax.set_yticks)(range(len(levels)), levels)
        (ax.set_xlim if axis == "x" else ax.set_ylim)(-0.5, len(levels) - 0.5)
        if axis == "x" and max((len(s) for s in levels), default=0) * len(levels) > 28:
            ax.tick_params(axis="x", labelrotation=30)
        return coords
    coords = values.astype(float).to_numpy()
    if param.low is not None and param.high is not None and param.high > param.low:
        # The declared range, not the data's: ticks stay sparse and readable (a narrow data span
        # on a log axis made matplotlib label every minor tick) and panels compare across sweeps.
        low, high = float(param.low), float(param.high)
        if param.log and low > 0:
            pad = (high / low) ** 0.04
            lim = (low / pad, high * pad)
        else:
            pad = 0.04 * (high - low)
            lim = (low - pad, high + pad)
        (ax.set_xlim if axis == "x" else ax.set_ylim)(*lim)
    if param.log:
        set_scale("log")
        target.set_major_locator(LogLocator(base=10, numticks=6))
        target.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0), numticks=12))
        if param.low and param.high and param.high / param.low < 100:
            # Under two decades a bare log axis shows one label at most: label 2 and 5 too.
            target.set_minor_formatter(_short_formatter())
        target.set_major_formatter(_short_formatter())
    elif param.kind == "int":
        target.set_major_locator(MaxNLocator(integer=True, nbins=6))
    else:
        target.set_major_locator(MaxNLocator(nbins=5))
    return coords


def _short_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:.0e}".replace("e-0", "e-").replace("e+00", "")
                         if v < 0.01 or v >= 1e4 else f"{v:g}")


def scatter(ax: Axes, table: pd.DataFrame, param: ParamInfo, ycol: str, ylabel: str, *,
            legend: bool = True) -> None:
    """``ycol`` against one parameter, points coloured by trial status (``legend``: add the
    status legend entries to this axes)."""
    data = table[[param.column, ycol, "status"]].dropna(subset=[ycol]).reset_index(drop=True)
    xs = positions(ax, param, data[param.column])
    categorical = param.categorical or not _numeric(data[param.column])
    if categorical:  # small deterministic jitter keeps equal points visible
        xs = xs + np.array([((i * 37) % 11 - 5) * 0.025 for i in range(len(xs))])
    status = data["status"].astype(str).to_numpy()
    colours = [STATUS_COLOURS.get(s, "black") for s in status]
    keep = np.isfinite(xs)
    # One scatter artist per panel (not one per status): drawing, not data, is the report's cost.
    ax.scatter(xs[keep], data[ycol][keep], c=[c for c, k in zip(colours, keep) if k], s=14,
               alpha=0.75, linewidths=0)
    for name, colour in STATUS_COLOURS.items():
        if legend and (status == name).any():
            ax.scatter([], [], c=colour, label=name, s=14)
    inactive = int(data[param.column].isna().sum()) if not categorical else 0
    title = param.name + (f" ({inactive} trials {INACTIVE})" if inactive else "")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(which="both", labelsize=7)
    ax.grid(alpha=0.25)


def objective_vs_params(table: pd.DataFrame, params: Sequence[ParamInfo], ycol: str,
                        ylabel: str, *, ncols: int = 4) -> bytes | None:
    """A grid: ``ycol`` against every parameter."""
    if not params or ycol not in table:
        return None
    nrows = math.ceil(len(params) / ncols)
    fig = new_figure(3.1 * ncols, 2.5 * nrows)
    # One shared y axis: text is most of matplotlib's drawing time, and one scale reads better.
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    for i, (ax, param) in enumerate(zip(axes, params)):
        scatter(ax, table, param, ycol, ylabel if i % ncols == 0 else "", legend=i == 0)
    for ax in axes[len(params):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncols=len(labels), fontsize=8,
                   frameon=False)
    top = 1 - 0.45 / fig.get_figheight()
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.6 / fig.get_figheight(), top=top - 0.04,
                        wspace=0.32, hspace=0.55)
    return png(fig)


def importance_bars(found: Sequence[Importance]) -> bytes | None:
    """Horizontal bars, one panel per objective, most important parameter on top."""
    shown = [imp for imp in found if imp.values]
    if not shown:
        return None
    rows = max(len(imp.values) for imp in shown)
    fig = new_figure(4.2 * len(shown), 0.9 + 0.28 * rows)
    for i, imp in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), i + 1)
        names, vals = list(imp.values)[::-1], list(imp.values.values())[::-1]
        ax.barh(names, vals, color="tab:blue")
        for y, v in enumerate(vals):
            ax.text(v, y, f" {v:.2f}", va="center", fontsize=7)
        ax.set_xlim(0, max(vals) * 1.25)
        ax.set_title(f"{imp.objective} ({imp.evaluator}, {imp.trials} trials)", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return png(fig)


def parallel_coordinates(table: pd.DataFrame, params: Sequence[ParamInfo],
                         objectives: Sequence[tuple[str, str, str]], *,
                         max_params: int = 9) -> bytes | None:
    """One vertical axis per parameter (the ``max_params`` first ones: pass them most important
    first) then per objective; one line per trial with a value, coloured by the first objective
    (yellow = better).

    Args:
        table: trial table.
        params: parameters in axis order.
        objectives: ``(column, name, mode)`` per objective axis.
        max_params: most parameter axes drawn (more are unreadable at page width).
    """
    from matplotlib import colormaps

    if not objectives or objectives[0][0] not in table:
        return None
    data = table[table[objectives[0][0]].notna()].reset_index(drop=True)
    if len(data) < 2:
        return None
    axes_info: list[tuple[str, np.ndarray, list[tuple[float, str]]]] = []
    for param in params[:max_params]:
        axes_info.append((param.name, *_normalised_param(param, data[param.column])))
    for column, name, mode in objectives:
        values = data[column].astype(float).to_numpy() if column in data else np.full(len(data),
                                                                                    np.nan)
        axes_info.append((f"{name}\n{ARROW[mode]}", *_normalised_numeric(values, False)))
    fig = new_figure(max(6.0, 1.2 * len(axes_info)), 4.4)
    ax = fig.add_subplot()
    first = data[objectives[0][0]].astype(float).to_numpy()
    lo, hi = np.nanmin(first), np.nanmax(first)
    score = (first - lo) / (hi - lo) if hi > lo else np.full(len(first), 0.5)
    if objectives[0][2] == "min":
        score = 1 - score
    from matplotlib.collections import LineCollection

    cmap = colormaps["viridis"]
    matrix = np.stack([a[1] for a in axes_info], axis=1)
    order = np.argsort(score)  # best drawn last, on top
    xs = np.arange(len(axes_info), dtype=float)
    segments = [np.column_stack([xs, matrix[i]]) for i in order]
    ax.add_collection(LineCollection(segments, colors=cmap(score[order]), alpha=0.5, lw=0.9))
    for j, (_name, _vals, ticks) in enumerate(axes_info):
        ax.axvline(j, color="0.3", lw=0.8)
        for y, text in ticks:
            ax.text(j + 0.04, y, text, fontsize=6.5, va="center", color="0.15")
    ax.set_xticks(range(len(axes_info)), [a[0] for a in axes_info], fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.15, 1.05)
    ax.set_xlim(-0.2, len(axes_info) - 0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    shown = f"{min(len(params), max_params)} of {len(params)} parameters, " if len(
        params) > max_params else ""
    ax.set_title(f"{len(data)} trials, {shown}colour: {objectives[0][1]} (yellow = better)",
                 fontsize=9)
    fig.tight_layout()
    return png(fig)


def _normalised_param(param: ParamInfo, values: pd.Series
                      ) -> tuple[np.ndarray, list[tuple[float, str]]]:
    if param.categorical or not _numeric(values):
        levels = [lab for lab in level_labels(param, list(values)) if lab != INACTIVE]
        step = 1.0 / max(len(levels) - 1, 1)
        pos = {lab: i * step for i, lab in enumerate(levels)} | {INACTIVE: -0.1}
        ticks = [(pos[lab], lab) for lab in levels]
        if values.isna().any():
            ticks.append((-0.1, INACTIVE))
        return np.array([pos[label(v)] for v in values], dtype=float), ticks
    return _normalised_numeric(values.astype(float).to_numpy(), param.log, param)


def _normalised_numeric(values: np.ndarray, log: bool, param: ParamInfo | None = None
                        ) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Values scaled to [0, 1] (log10 first on log axes); NaN (inactive) at -0.1 (``n/a``)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full(values.shape, -0.1), [(-0.1, INACTIVE)]
    low = min(finite.min(), param.low) if param and param.low is not None else finite.min()
    high = max(finite.max(), param.high) if param and param.high is not None else finite.max()
    fwd = np.log10 if log and low > 0 else (lambda v: v)
    span = fwd(high) - fwd(low)
    scaled = (fwd(values) - fwd(low)) / span if span > 0 else np.full(values.shape, 0.5)
    ticks = [(0.0, _fmt(low)), (0.5, _fmt(10 ** ((fwd(low) + fwd(high)) / 2) if log and low > 0
                                          else (low + high) / 2)), (1.0, _fmt(high))]
    if span == 0:
        ticks = [(0.5, _fmt(low))]
    scaled = np.where(np.isfinite(values), scaled, -0.1)
    if not np.isfinite(values).all():
        ticks.append((-0.1, INACTIVE))
    return scaled, ticks


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _numeric(values: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))
