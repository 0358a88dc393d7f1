"""Inference energy of SNNs and their ANN twins under named energy models.

``counting`` runs one pass and counts synaptic operations and neuron updates; ``models`` prices
those counts under the constants of ``models.yaml`` (compute-only fp32, memory-aware, INT8);
``metrics`` turns them into per-trial metrics and the per-layer table; ``spike_driven`` expands
I-LIF counts into binary spike trains; ``sensitivity`` tabulates the best trials under every
model. Formulas and sources: docs/energy.md.

May import: snnsearch.storage, snnsearch.registry, snnsearch.constants.
"""

from snnsearch.energy.counting import (
    E_AC_PJ,
    E_MAC_PJ,
    EnergyReport,
    LayerEnergy,
    NeuronSite,
    SpikeMatmul,
    estimate_energy,
)
from snnsearch.energy.metrics import EnergySummary, energy_summary, twin_report, write_layer_table
from snnsearch.energy.models import (
    DEFAULT_MODEL,
    DEFAULT_SRAM_KB,
    ENERGY_MODELS,
    EnergyModel,
    breakeven_rate,
    get_model,
    model_names,
    price,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SRAM_KB",
    "ENERGY_MODELS",
    "E_AC_PJ",
    "E_MAC_PJ",
    "EnergyModel",
    "EnergyReport",
    "EnergySummary",
    "LayerEnergy",
    "NeuronSite",
    "SpikeMatmul",
    "breakeven_rate",
    "energy_summary",
    "estimate_energy",
    "get_model",
    "model_names",
    "price",
    "twin_report",
    "write_layer_table",
]
