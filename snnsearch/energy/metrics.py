"""Every energy model's metrics and the per-layer table from one counted pass.

Trainables call :func:`energy_summary` once per epoch with the report of their monitored forward
pass (and, for SNNs, the report of the ANN twin, counted once per trial: it depends on shapes
only), log ``summary.metrics`` and write ``summary.table`` with :func:`write_layer_table`.

Metric keys (one definition, :mod:`snnsearch.constants`):

* ``energy_mj`` / ``energy_compute_mj`` / ``energy_memory_mj``: the chosen model, per image;
* ``energy/<model>_mj``: the total under every model (``+`` written ``_``: MLflow refuses it);
* ``energy_ratio/<model>``: SNN ÷ ANN twin under that model (< 1: the SNN is cheaper);
* ``breakeven_rate/<model>``: the synaptic rate at which the SNN stops beating its twin;
* ``synaptic_rate``: the current synaptic rate (mean input count of the event-driven layers,
  weighted by their synaptic operations; I-LIF counts 0..D, like the firing rates).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from snnsearch import constants as K
from snnsearch.energy.counting import EnergyReport, estimate_energy
from snnsearch.energy.models import (
    DEFAULT_MODEL,
    DEFAULT_SRAM_KB,
    breakeven_rate,
    get_model,
    model_names,
    price,
)


@dataclass(frozen=True)
class EnergySummary:
    """Args:
        metrics: flat metric dict (keys above) for ``tune.report``.
        table: one dict per synaptic layer / neuron site with ``layer``, ``kind``, ``ops``,
            ``rate`` and ``<model>/compute_mj`` / ``<model>/memory_mj`` for every model.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    table: list[dict[str, Any]] = field(default_factory=list)


def twin_report(twin: nn.Module, images: torch.Tensor) -> EnergyReport:
    """Counts the ANN twin (same shapes, ReLU, T=1) on ``images``: every layer is a MAC."""
    return estimate_energy(twin, images, timesteps=1, spiking=False)


def energy_summary(
    snn: EnergyReport, *, twin: EnergyReport | None, model: str = DEFAULT_MODEL,
    sram_kb: float = DEFAULT_SRAM_KB,
) -> EnergySummary:
    """Prices ``snn`` under every registered model.

    Args:
        snn: counts of the trial's network (an ANN trial passes its own counts).
        twin: counts of the ANN twin, or None for an ANN trial (its ratio is 1 by definition).
        model: the sweep's chosen model, reported as ``energy_mj``.
        sram_kb: on-chip SRAM size of the memory-aware models.
    """
    chosen = get_model(model)
    metrics: dict[str, float] = {}
    table = _rows(snn)
    for name in model_names():
        m = get_model(name)
        priced = price(snn, m, sram_kb=sram_kb)
        metrics[f"{K.ENERGY_MODEL_PREFIX}{m.slug}_mj"] = priced.total_mj
        if m is chosen:
            metrics[K.ENERGY_MJ] = priced.total_mj
            metrics[K.ENERGY_COMPUTE_MJ] = priced.compute_mj
            metrics[K.ENERGY_MEMORY_MJ] = priced.memory_mj
        for row, cost in zip(table, _aligned(priced.rows, len(table))):
            row[f"{m.name}/compute_mj"] = cost[0]
            row[f"{m.name}/memory_mj"] = cost[1]
        if twin is None:
            metrics[f"{K.ENERGY_RATIO_PREFIX}{m.slug}"] = 1.0
            continue
        ann_mj = price(twin, m, sram_kb=sram_kb).total_mj
        if m is chosen:
            metrics[K.ENERGY_ANN_MJ] = ann_mj
        metrics[f"{K.ENERGY_RATIO_PREFIX}{m.slug}"] = priced.total_mj / ann_mj
        rate = breakeven_rate(snn, ann_mj, m, sram_kb=sram_kb)
        if rate is not None:
            metrics[f"{K.BREAKEVEN_PREFIX}{m.slug}"] = rate
    if snn.synaptic_rate is not None:
        metrics[K.SYNAPTIC_RATE] = snn.synaptic_rate
    return EnergySummary(metrics, table)


def _rows(report: EnergyReport) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"layer": layer.name, "kind": layer.kind, "ops": layer.ops, "rate": layer.rate}
        for layer in report.layers
    ]
    rows += [{"layer": s.name, "kind": s.kind, "ops": s.updates_per_image, "rate": ""}
             for s in report.sites]
    return rows


def _aligned(rows: tuple, n: int) -> list[tuple[float, float]]:
    """pJ → mJ per table row; compute-only models price no neuron sites, which cost them 0."""
    costs = [(r.compute_pj * 1e-9, r.memory_pj * 1e-9) for r in rows]
    return costs + [(0.0, 0.0)] * (n - len(costs))


def write_layer_table(summary: EnergySummary, path: str | Path) -> Path:
    """Writes the per-layer table as CSV (mJ per image); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not summary.table:
        path.write_text("")
        return path
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(summary.table[0]))
        writer.writeheader()
        writer.writerows(summary.table)
    return path
