"""Operation counts of one inference pass and their price under the report's protocol (45 nm,
Horowitz 2014), the protocol of the Spike-driven Transformer appendix and SpikeYOLO:

    E_SNN = E_MAC · FLOPs(first layer, real-valued input) + E_AC · Σ_{l≥2} fr_l · T · FLOPs_l
    E_ANN = E_MAC · Σ_l FLOPs_l

with E_MAC = 4.6 pJ, E_AC = 0.9 pJ (spikingjelly's ``op_counter.SimpleEnergyCostConfig.fp32``).
For I-LIF, fr is the mean integer count per neuron per logical step (0..D), not divided by D.

Why hooks instead of spikingjelly's ``op_counter``: its AC counter charges element-wise ops, BN and
reductions as well, and treats a tensor as spikes only if it is strictly 0/1, so I-LIF's integer
counts are charged as MACs. The protocol counts only synaptic operations (conv / linear / spike
matmul) and charges integer counts as events, which forward hooks on those layers give exactly.

The same pass also counts neuron sites (spiking neuron updates, and non-spiking activations such
as ReLU/ELU) so that the memory-aware models of :mod:`snnsearch.energy.models` can charge state
traffic per neuron per timestep without a second forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron
from spikingjelly.activation_based.op_counter import SimpleEnergyCostConfig

_COSTS = SimpleEnergyCostConfig.fp32()
E_MAC_PJ = _COSTS.e_mac_pj
E_AC_PJ = _COSTS.e_ac_pj


@dataclass(frozen=True)
class LayerEnergy:
    """One synaptic layer's share. ``macs_per_image`` counts all T steps (or one, for a static
    real-valued input computed once); ``rate`` is the mean input count (1.0 for MAC layers)."""

    name: str
    kind: str  # "mac" or "ac"
    macs_per_image: float
    rate: float
    energy_mj: float
    executed_macs: float = 0.0  # MACs the forward pass ran, before the static-input discount

    @property
    def ops(self) -> float:
        """Charged operations per image: MACs, or synaptic events (MACs × input count) for AC."""
        return self.macs_per_image * (self.rate if self.kind == "ac" else 1.0)


@dataclass(frozen=True)
class NeuronSite:
    """One neuron (or activation) module's work per image.

    Args:
        name: module name.
        kind: "spiking" (a spikingjelly node: one membrane update per neuron per step) or
            "activation" (ReLU/ELU/...: one stored activation per element).
        updates_per_image: output elements per image over all steps (neurons × T for spiking).
        leaky: the membrane decays every step (LIF, PLIF, I-LIF; not IF).
    """

    name: str
    kind: str
    updates_per_image: float
    leaky: bool


@dataclass
class EnergyReport:
    layers: list[LayerEnergy] = field(default_factory=list)
    sites: list[NeuronSite] = field(default_factory=list)

    @classmethod
    def mean(cls, reports: list["EnergyReport"]) -> "EnergyReport":
        """Layer-wise mean of reports of the same network on different images (rates averaged)."""
        if not reports:
            raise ValueError("no energy reports to average")
        n = len(reports)
        layers = []
        for group in zip(*(r.layers for r in reports), strict=True):
            first = group[0]
            layers.append(LayerEnergy(
                first.name, first.kind, sum(g.macs_per_image for g in group) / n,
                sum(g.rate for g in group) / n, sum(g.energy_mj for g in group) / n,
                sum(g.executed_macs for g in group) / n,
            ))
        sites = [
            NeuronSite(g[0].name, g[0].kind, sum(s.updates_per_image for s in g) / n, g[0].leaky)
            for g in zip(*(r.sites for r in reports), strict=True)
        ]
        return cls(layers, sites)

    @property
    def total_mj(self) -> float:
        return float(sum(layer.energy_mj for layer in self.layers))

    @property
    def total_macs(self) -> float:
        return float(sum(layer.macs_per_image for layer in self.layers))

    @property
    def executed_macs(self) -> float:
        """MACs per image the forward pass ran (what ``torch.utils.flop_counter`` sees ÷ 2)."""
        return float(sum(layer.executed_macs for layer in self.layers))

    @property
    def synaptic_rate(self) -> float | None:
        """Mean input event count of the AC layers, weighted by their synaptic operations
        (0..1 for binary spikes, 0..D for I-LIF); None when no layer is event-driven."""
        ac = [layer for layer in self.layers if layer.kind == "ac"]
        macs = sum(layer.macs_per_image for layer in ac)
        return sum(layer.ops for layer in ac) / macs if macs else None


class SpikeMatmul(nn.Module):
    """``a @ b`` as a module, so the energy hooks see spike-driven matmuls (e.g. Q·Kᵀ·V)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


def _is_event_tensor(x: torch.Tensor) -> bool:
    """Spikes (0/1) and I-LIF counts are non-negative integers; anything else is real-valued."""
    return bool(x.min() >= 0) and bool(torch.equal(x, torch.round(x)))


def _repeated_over_time(x: torch.Tensor, timesteps: int) -> bool:
    """True if ``x`` is ``[T, B, ...]`` (or its flattened ``[T·B, ...]`` form inside spikingjelly's
    SeqToANNContainer) with identical time slices: a static input the hardware computes once."""
    if timesteps <= 1 or x.dim() < 2 or x.shape[0] % timesteps:
        return False
    steps = x.reshape(timesteps, -1)
    return bool((steps == steps[:1]).all())


def _layer_macs(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> float:
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel = module.in_channels // module.groups
        for k in module.kernel_size:
            kernel *= k
        return float(output.numel() * kernel)
    if isinstance(module, nn.Linear):
        return float(output.numel() * module.in_features)
    a, b = inputs
    return float(output.numel() * a.shape[-1])  # SpikeMatmul: one MAC per (out element, k)


def _event_rate(module: nn.Module, inputs: tuple[Any, ...]) -> float | None:
    """Mean event count of the input(s) driving this layer, or None if real-valued."""
    if isinstance(module, SpikeMatmul):
        events = [t for t in inputs if _is_event_tensor(t)]
        if not events:
            return None
        # Spike × spike (or count) matmul: the op happens when the event-side operand fires.
        return min(float(t.mean(dtype=torch.float64)) for t in events)
    x = inputs[0]
    return float(x.mean(dtype=torch.float64)) if _is_event_tensor(x) else None


# Non-spiking activations whose outputs are stored for the next layer (memory-aware models).
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.ELU, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh)


def _neuron_sites(model: nn.Module) -> list[nn.Module]:
    """Spiking nodes and activation modules, skipping anything nested inside a spiking node."""
    inside = {
        child for m in model.modules() if isinstance(m, neuron.BaseNode)
        for child in m.modules() if child is not m
    }
    return [m for m in model.modules() if m not in inside
            and isinstance(m, (neuron.BaseNode, *ACTIVATIONS))]


@torch.no_grad()
def estimate_energy(
    model: nn.Module,
    example_input: torch.Tensor | tuple[Any, ...],
    *,
    timesteps: int,
    spiking: bool,
    batch_size: int | None = None,
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> EnergyReport:
    """Runs ``model`` once on ``example_input`` and charges each conv/linear/spike-matmul.

    Args:
        model: any network made of ``nn.Conv*``/``nn.Linear``/:class:`SpikeMatmul` layers.
        example_input: a batch (or a tuple of positional inputs) of real images.
        timesteps: T, used to recognise static inputs repeated over time (computed once).
        spiking: False for ANN baselines: everything is a MAC.
        batch_size: images in the batch; defaults to the first input's first dimension.
        forward: how to call the model (defaults to ``model(*inputs)``).

    Returns:
        Per-layer energies in mJ per image.
    """
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    batch = batch_size if batch_size is not None else int(inputs[0].shape[0])
    report = EnergyReport()
    names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        executed = macs = _layer_macs(module, args, output) / batch
        rate = _event_rate(module, args) if spiking else None
        if rate is None:
            if spiking and _repeated_over_time(args[0], timesteps):
                macs /= timesteps
            report.layers.append(LayerEnergy(names[module], "mac", macs, 1.0,
                                             macs * E_MAC_PJ * 1e-9, executed))
        else:
            report.layers.append(LayerEnergy(names[module], "ac", macs, rate,
                                             macs * rate * E_AC_PJ * 1e-9, executed))

    def site_hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        out = output[0] if isinstance(output, (tuple, list)) else output
        spiking_node = isinstance(module, neuron.BaseNode)
        report.sites.append(NeuronSite(
            names[module], "spiking" if spiking_node else "activation", out.numel() / batch,
            spiking_node and not isinstance(module, neuron.IFNode),
        ))

    watched = (nn.modules.conv._ConvNd, nn.Linear, SpikeMatmul)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, watched)]
    handles += [m.register_forward_hook(site_hook) for m in _neuron_sites(model)]
    was_training = model.training
    model.eval()
    try:
        if forward is None:
            model(*inputs)
        else:
            forward(model, example_input)
    finally:
        for h in handles:
            h.remove()
        functional.reset_net(model)
        model.train(was_training)
    return report
