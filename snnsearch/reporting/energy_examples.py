"""The worked examples of docs/energy.md: the MNIST CSNN and the depth net under every model.

Counts come from a real forward pass of each network (shapes only: MACs and neuron updates do
not depend on the weights); the synaptic rate is set to a stated what-if value, because a
trained net's rate depends on its training. The break-even rate does not depend on it.
``bench/energy_models.py`` prints these tables; tests pin the numbers quoted in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from snnsearch.energy.counting import EnergyReport, estimate_energy
from snnsearch.energy.sensitivity import at_rate, model_table

CSNN_RATE = 0.10  # spikes per neuron per step
DEPTH_RATE = 0.50  # I-LIF counts (0..D) per neuron per step


@dataclass(frozen=True)
class Example:
    """One worked example: the network's description, the what-if rate and both counts."""

    title: str
    rate: float
    snn: EnergyReport
    twin: EnergyReport

    def table(self, *, sram_kb: float = 32.0) -> list[dict[str, Any]]:
        return model_table(self.snn, self.twin, sram_kb=sram_kb)


def csnn_example(*, channels: int = 128, T: int = 4, rate: float = CSNN_RATE) -> Example:
    """The report's MNIST CSNN (C=128, T=4, LIF) against its ReLU twin, one 28×28 image."""
    from snnsearch.classify.models import ModelCfg, create_model
    from snnsearch.snn.neurons import NeuronSpec

    cfg = ModelCfg(T=T, neuron=NeuronSpec(kind="lif"), channels=channels)
    image = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        snn, twin = create_model("csnn", cfg), create_model("csnn", cfg.ann_twin())
    counted = estimate_energy(snn, image, timesteps=T, spiking=True)
    return Example(f"MNIST CSNN C={channels}, LIF, T={T}", rate, at_rate(counted, rate),
                   estimate_energy(twin, image, timesteps=1, spiking=False))


def depth_example(*, height: int = 192, width: int = 640, T: int = 2, D: int = 4,
                  rate: float = DEPTH_RATE) -> Example:
    """The report's depth net (MS-ResNet-18 I-LIF encoder, monodepth2 decoder) against its twin
    (the same encoder with ReLU, T=1), one image."""
    from snnsearch.depth.models.net import DepthModelSpec, build_depth_net
    from snnsearch.snn.neurons import NeuronSpec

    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        snn = build_depth_net(DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="ilif", D=D), T))
        twin = build_depth_net(DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="relu"), 1))
    counted = estimate_energy(snn, image, timesteps=T, spiking=True)
    twin_counts = estimate_energy(twin, image, timesteps=1, spiking=False)
    return Example(f"Depth MS-ResNet-18 I-LIF T={T} D={D}, {width}×{height}", rate,
                   at_rate(counted, rate), twin_counts)


def markdown(example: Example, *, sram_kb: float = 32.0) -> str:
    """The example's table as Markdown (the form docs/energy.md quotes)."""
    lines = [
        f"{example.title}, synaptic rate {example.rate:g} (what-if), SRAM {sram_kb:g} KB:",
        "",
        "| model | SNN mJ | compute | memory | ANN twin mJ | SNN / ANN | break-even rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in example.table(sram_kb=sram_kb):
        even = row["breakeven_rate"]
        lines.append(
            f"| {row['model']} | {row['snn_mj']:.4g} | {row['compute_mj']:.4g} | "
            f"{row['memory_mj']:.4g} | {row['ann_mj']:.4g} | {row['ratio']:.3f} | "
            f"{'n/a' if even is None else format(even, '.4f')} |")
    return "\n".join(lines)
