"""Sweep plots from the trial table: the objective against every varied hyperparameter, and
against estimated energy (the accuracy–energy or abs_rel–energy trade-off of SNNs).

Points are coloured by trial status, because a trial stopped early by ASHA reports a value from
fewer epochs and should not be read like a completed one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

STATUS_COLOURS = {"completed": "tab:blue", "stopped early": "tab:orange",
                  "silent": "tab:gray", "saturated": "tab:purple", "errored": "tab:red"}
ENERGY = "last/energy_mj"


def varied_params(table: pd.DataFrame) -> list[str]:
    """Config keys that take more than one value across trials (the searched ones, in effect)."""
    cols = [c for c in table.columns if c.startswith("config/")]
    return [c.removeprefix("config/") for c in cols if table[c].dropna().astype(str).nunique() > 1]


def plot_sweep(table: pd.DataFrame, metric: str, out_dir: Path) -> list[Path]:
    """Writes ``<metric>_vs_<param>.png`` for each varied parameter and
    ``<metric>_vs_energy_mj.png``; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    y = f"best_{metric}"
    if y not in table or table[y].dropna().empty:
        return []
    written = [_scatter(table, f"config/{p}", y, p, out_dir / f"{metric}_vs_{p}.png")
               for p in varied_params(table)]
    if ENERGY in table and not table[ENERGY].dropna().empty:
        written.append(_scatter(table, ENERGY, y, "energy (mJ / image)",
                                out_dir / f"{metric}_vs_energy_mj.png"))
    return written


def _scatter(table: pd.DataFrame, x: str, y: str, label: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=100)
    data = table[[x, y, "status"]].dropna(subset=[x, y])
    numeric = _is_numeric(data[x])
    if numeric:
        xs = data[x].astype(float)
    else:  # categorical axis: one slot per value, small jitter so equal points stay visible
        levels = sorted(data[x].astype(str).unique())
        xs = data[x].astype(str).map(levels.index).astype(float)
        xs = xs + [((i * 37) % 11 - 5) * 0.02 for i in range(len(xs))]
        ax.set_xticks(range(len(levels)), levels)
    for status, colour in STATUS_COLOURS.items():
        mask = (data["status"] == status).to_numpy()
        if mask.any():
            ax.scatter(xs[mask], data[y][mask], c=colour, label=status, s=18, alpha=0.8)
    if numeric and _wide_positive(xs):
        ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel(y.removeprefix("best_"))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _wide_positive(xs: pd.Series) -> bool:
    low, high = float(xs.min()), float(xs.max())
    return low > 0 and math.isfinite(high) and high / low > 20
