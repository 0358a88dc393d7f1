"""Per-layer firing rates, silent samples and energy from one monitored forward pass.

Firing rates come from spikingjelly's ``monitor.OutputMonitor`` on every spiking node; the same
forward pass feeds the energy hooks (:func:`snnsearch.energy.estimate_energy`), so the rates the
energy uses and the rates reported are the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from spikingjelly.activation_based import monitor, neuron

from snnsearch.energy import EnergyReport, estimate_energy


@dataclass
class SpikeStats:
    """Args:
        layer_rates: mean output per neuron per step for each spiking layer (I-LIF: mean count).
        output_rate: the same for the output layer.
        silent_fraction: share of images whose output layer emitted no spike in any step.
        energy: energy report of the pass.
        records: raw outputs ``{layer: [T, B, ...]}`` kept for figures.
    """

    layer_rates: dict[str, float] = field(default_factory=dict)
    output_rate: float = 0.0
    silent_fraction: float = 0.0
    energy: EnergyReport = field(default_factory=EnergyReport)
    records: dict[str, torch.Tensor] = field(default_factory=dict)


def spike_stats(
    model: nn.Module, images: torch.Tensor, *, timesteps: int, spiking: bool,
    output_layer: str | None, keep_records: bool = False,
) -> SpikeStats:
    """Runs ``model`` once on ``images`` with monitors and energy hooks attached.

    Args:
        output_layer: module name of the output neuron (``"readout.neuron"``), or None.
        keep_records: keep every layer's raw output (for figures; costs memory).
    """
    mon = monitor.OutputMonitor(model, neuron.BaseNode, function_on_output=lambda s: s.detach())
    try:
        energy = estimate_energy(model, images, timesteps=timesteps, spiking=spiking)
        records = {name: torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
                   for name, outs in _group(mon).items()}
    finally:
        mon.remove_hooks()
    stats = SpikeStats(energy=energy, records=records if keep_records else {})
    stats.layer_rates = {name: float(r.float().mean()) for name, r in records.items()}
    if output_layer is not None and output_layer in records:
        out = records[output_layer].float()
        stats.output_rate = float(out.mean())
        per_image = out.transpose(0, 1).flatten(1).sum(1)
        stats.silent_fraction = float((per_image == 0).float().mean())
    return stats


def _group(mon: monitor.OutputMonitor) -> dict[str, list[torch.Tensor]]:
    """Records by layer name (``mon[name]`` lists one tensor per call of that layer)."""
    return {name: mon[name] for name in mon.monitored_layers if mon[name]}
