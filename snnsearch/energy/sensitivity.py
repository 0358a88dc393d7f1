"""How the best trials fare under every energy model, and where they stop beating their ANN twin.

Two views of the same question, does an SNN's energy advantage survive a more honest model:

* :func:`model_table`: one network's energy under every model beside its ANN twin's, with the
  ratio and the break-even synaptic rate (the worked examples of docs/energy.md);
* :func:`sensitivity_table`: the best trials of a sweep (from its trial table, columns
  ``last/<metric>``) under every model, written beside ``trials.parquet`` by the sweep driver as
  ``energy_sensitivity.csv`` and logged to the parent MLflow run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from snnsearch import constants as K
from snnsearch.energy.counting import E_AC_PJ, EnergyReport
from snnsearch.energy.models import (
    DEFAULT_SRAM_KB,
    breakeven_rate,
    get_model,
    model_names,
    price,
)
from snnsearch.storage import sweepdir as _storage

SENSITIVITY_FILE = "energy_sensitivity.csv"
CONFIG_COLUMNS = ("model", "encoder", "neuron", "T", "D")


def at_rate(report: EnergyReport, rate: float) -> EnergyReport:
    """``report`` with every event-driven layer's input count set to ``rate`` (what-if counts:
    MACs and neuron updates depend on shapes only, so this is the network at that rate)."""
    layers = [
        replace(layer, rate=rate, energy_mj=layer.macs_per_image * rate * E_AC_PJ * 1e-9)
        if layer.kind == "ac" else layer
        for layer in report.layers
    ]
    return EnergyReport(layers, list(report.sites))


def model_table(snn: EnergyReport, twin: EnergyReport, *, sram_kb: float = DEFAULT_SRAM_KB
                ) -> list[dict[str, Any]]:
    """Per model: the SNN's total / compute / memory energy, its ANN twin's, the ratio and the
    break-even synaptic rate (all mJ per image)."""
    rows = []
    for name in model_names():
        model = get_model(name)
        s, a = price(snn, model, sram_kb=sram_kb), price(twin, model, sram_kb=sram_kb)
        rows.append({
            "model": name, "snn_mj": s.total_mj, "compute_mj": s.compute_mj,
            "memory_mj": s.memory_mj, "ann_mj": a.total_mj, "ratio": s.total_mj / a.total_mj,
            "breakeven_rate": breakeven_rate(snn, a.total_mj, model, sram_kb=sram_kb),
        })
    return rows


def sensitivity_table(table: Any, *, metric: str, mode: str, top: int = 5) -> Any:
    """The ``top`` best trials (by ``last/<metric>``) with their energy under every model.

    Args:
        table: the sweep's trial table (``snnsearch.reporting.results``; pandas DataFrame).
        metric, mode: the objective that ranks the trials ("min" or "max").
        top: how many trials to keep.

    Returns:
        A DataFrame: ``trial_id``, the metric, the config columns present, ``synaptic_rate`` and,
        per model, ``energy/<model>_mj``, ``energy_ratio/<model>``, ``breakeven_rate/<model>``
        (the rate at which the SNN stops beating its ANN twin; compare with ``synaptic_rate``).
        Empty when the table has no energy columns.
    """
    import pandas as pd

    score = f"last/{metric}"
    wanted = [f"{p}{get_model(n).slug}{s}" for n in model_names()
              for p, s in ((K.ENERGY_MODEL_PREFIX, "_mj"), (K.ENERGY_RATIO_PREFIX, ""),
                           (K.BREAKEVEN_PREFIX, ""))]
    if score not in table or f"last/{wanted[0]}" not in table:
        return pd.DataFrame()
    ranked = table[table[score].notna()].sort_values(score, ascending=mode == "min").head(top)
    out = pd.DataFrame({"trial_id": ranked.get("trial_id"), metric: ranked[score]})
    for key in CONFIG_COLUMNS:
        if f"config/{key}" in ranked:
            out[key] = ranked[f"config/{key}"]
    for key in (K.SYNAPTIC_RATE, *wanted):
        if f"last/{key}" in ranked:
            out[key] = ranked[f"last/{key}"]
    return out.reset_index(drop=True)


def write_sensitivity(rows: Sequence[dict[str, Any]], *, metric: str, mode: str,
                      sweep_dir: str, top: int = 5) -> Path | None:
    """Writes :func:`sensitivity_table` of the trial rows as ``energy_sensitivity.csv`` in
    ``sweep_dir``; returns its path, or None when no trial reported energy."""
    import pandas as pd

    frame = sensitivity_table(pd.DataFrame(list(rows)), metric=metric, mode=mode, top=top)
    if frame.empty:
        return None
    path = Path(sweep_dir) / SENSITIVITY_FILE
    _storage.write_text(str(path), frame.to_csv(index=False))  # atomic: old file or new one
    return path
