"""Energy models by name: constants from ``models.yaml`` applied to the counts of one pass.

A model prices an :class:`~snnsearch.energy.counting.EnergyReport` (synaptic layers + neuron
sites, counted once) layer by layer:

* synaptic compute: ``MACs × mac_pj`` for layers fed by real values, ``events × ac_pj`` for
  layers fed by spikes / I-LIF counts (events = MACs × mean input count);
* memory (memory-aware models only): one weight read per synaptic operation (MAC or event);
  per spiking neuron per timestep a membrane read + write and, if it leaks, ``leak_pj``;
  per stored non-spiking activation a write + read. SRAM access energy follows Horowitz's
  64-bit read energy for the array size ``sram_kb`` (log-log interpolation, clamped to the
  table's range), scaled linearly to the word width.

Why per-access SRAM costs by size (and not one pJ/byte): the point of the memory-aware model is
that an SNN's extra per-timestep membrane traffic is paid at the memory's price, which grows
with the memory an accelerator needs (Dampfhoffer et al., IEEE TETCI 2023; Lemaire et al.,
ICONIP 2022).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from snnsearch.energy.counting import EnergyReport
from snnsearch.registry import Registry

DEFAULT_MODEL = "compute45"
DEFAULT_SRAM_KB = 32.0


@dataclass(frozen=True)
class MemoryCosts:
    """Memory-aware terms of a model (see ``models.yaml`` for each field's meaning)."""

    weight_bits: int
    state_bits: int
    leak_pj: float
    sram_64bit_read_pj: tuple[tuple[float, float], ...]  # (KB, pJ), sizes increasing

    def access_pj(self, bits: int, sram_kb: float) -> float:
        """Energy of one ``bits``-wide access to an SRAM of ``sram_kb`` kilobytes."""
        points = self.sram_64bit_read_pj
        size = min(max(sram_kb, points[0][0]), points[-1][0])
        for (k0, e0), (k1, e1) in zip(points, points[1:]):
            if size <= k1:
                frac = math.log(size / k0) / math.log(k1 / k0)
                e64 = math.exp(math.log(e0) + frac * (math.log(e1) - math.log(e0)))
                return e64 * bits / 64.0
        return points[-1][1] * bits / 64.0


@dataclass(frozen=True)
class EnergyModel:
    """One named energy model.

    Args:
        name: registry name (``compute45``, ``compute45+memory``, ``int8``, ``int8+memory``).
        description: one paragraph for docs and reports.
        mac_pj: energy of one multiply-accumulate.
        ac_pj: energy of one event-driven accumulate.
        memory: memory-aware terms, or None for compute-only models.
        sources: citations (full text in ``models.yaml``'s ``sources``).
    """

    name: str
    description: str
    mac_pj: float
    ac_pj: float
    memory: MemoryCosts | None
    sources: tuple[str, ...]

    @property
    def slug(self) -> str:
        """The name as a metric-key fragment (MLflow refuses ``+`` in metric names)."""
        return self.name.replace("+", "_")


@dataclass(frozen=True)
class PricedRow:
    """One row of the per-layer table under one model (pJ per image)."""

    name: str
    kind: str  # "mac", "ac", "spiking" or "activation"
    ops: float  # MACs, events, or neuron updates / stored activations
    compute_pj: float
    memory_pj: float


@dataclass(frozen=True)
class PricedReport:
    model: str
    rows: tuple[PricedRow, ...]

    @property
    def compute_mj(self) -> float:
        return sum(r.compute_pj for r in self.rows) * 1e-9

    @property
    def memory_mj(self) -> float:
        return sum(r.memory_pj for r in self.rows) * 1e-9

    @property
    def total_mj(self) -> float:
        return self.compute_mj + self.memory_mj


def price(
    report: EnergyReport, model: EnergyModel, *, sram_kb: float = DEFAULT_SRAM_KB
) -> PricedReport:
    """Prices every layer and neuron site of ``report`` under ``model`` (see module docstring)."""
    if not sram_kb > 0:
        raise ValueError(f"sram_kb must be > 0 (got {sram_kb})")
    mem = model.memory
    weight_pj = mem.access_pj(mem.weight_bits, sram_kb) if mem else 0.0
    state_pj = mem.access_pj(mem.state_bits, sram_kb) if mem else 0.0
    rows = []
    for layer in report.layers:
        per_op = model.ac_pj if layer.kind == "ac" else model.mac_pj
        rows.append(PricedRow(layer.name, layer.kind, layer.ops, layer.ops * per_op,
                              layer.ops * weight_pj))
    if mem is not None:
        for site in report.sites:
            leak = mem.leak_pj if site.leaky else 0.0
            rows.append(PricedRow(site.name, site.kind, site.updates_per_image,
                                  site.updates_per_image * leak,
                                  site.updates_per_image * 2 * state_pj))
    return PricedReport(model.name, tuple(rows))


def breakeven_rate(snn: EnergyReport, ann_mj: float, model: EnergyModel, *,
                   sram_kb: float = DEFAULT_SRAM_KB) -> float | None:
    """The synaptic rate (:attr:`EnergyReport.synaptic_rate`) at which the SNN costs as much as
    its ANN twin (``ann_mj``) under ``model``; the SNN is cheaper below it.

    The SNN's energy is affine in that rate, ``E(r) = A + r · c · Σ_AC MACs`` with ``c`` the cost
    of one event (accumulate plus, for memory-aware models, its weight read), so the break-even
    is ``(E_ANN − A) / (c · Σ_AC MACs)``. 0.0 when the SNN costs more even when silent; None when
    no layer is event-driven.
    """
    ac_macs = sum(layer.macs_per_image for layer in snn.layers if layer.kind == "ac")
    if not ac_macs:
        return None
    mem = model.memory
    per_event = model.ac_pj + (mem.access_pj(mem.weight_bits, sram_kb) if mem else 0.0)
    rate = snn.synaptic_rate or 0.0
    fixed = price(snn, model, sram_kb=sram_kb).total_mj * 1e9 - rate * ac_macs * per_event
    return max(0.0, (ann_mj * 1e9 - fixed) / (per_event * ac_macs))


def _as_model(name: str, raw: dict[str, Any]) -> EnergyModel:
    memory = raw.get("memory")
    costs = None
    if memory is not None:
        reads = memory["sram_64bit_read_pj"].items()
        table = tuple(sorted((float(k), float(v)) for k, v in reads))
        costs = MemoryCosts(int(memory["weight_bits"]), int(memory["state_bits"]),
                            float(memory["leak_pj"]), table)
    return EnergyModel(name, " ".join(str(raw["description"]).split()), float(raw["mac_pj"]),
                       float(raw["ac_pj"]), costs, tuple(raw.get("sources", ())))


@cache
def _load() -> tuple[dict[str, str], tuple[EnergyModel, ...]]:
    import yaml

    text = resources.files("snnsearch.energy").joinpath("models.yaml").read_text()
    data = yaml.safe_load(text)
    models = tuple(_as_model(name, raw) for name, raw in data["models"].items())
    return {k: " ".join(v.split()) for k, v in data["sources"].items()}, models


ENERGY_MODELS: Registry[EnergyModel] = Registry("energy model")
for _model in _load()[1]:
    ENERGY_MODELS.register(_model.name)(_model)


def check_choice(model: str, sram_kb: float) -> None:
    """Validates a config's ``energy_model`` / ``sram_kb`` with one-line errors naming the fix."""
    if model not in ENERGY_MODELS:
        raise ValueError(f"energy_model must be one of {', '.join(model_names())} (got {model!r})")
    if not sram_kb > 0:
        raise ValueError(f"sram_kb must be > 0 (got {sram_kb}); e.g. sram_kb=32 (KB of SRAM)")


def get_model(name: str) -> EnergyModel:
    """The model registered as ``name`` (unknown name → one-line ValueError listing the names)."""
    return ENERGY_MODELS.get(name)


def model_names() -> list[str]:
    """Model names in the order ``models.yaml`` lists them (the default first)."""
    return [m.name for m in _load()[1]]


def sources() -> dict[str, str]:
    """Citation key → full reference, from ``models.yaml``."""
    return dict(_load()[0])
