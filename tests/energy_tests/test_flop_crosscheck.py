"""MAC counts of the energy estimator against ``torch.utils.flop_counter`` on every model family.

FlopCounterMode counts 2 FLOPs per MAC for conv / linear / matmul, so on the same forward pass
each hooked layer's executed MACs must be exactly half its FLOPs: energy cannot drift from the
architectures (a layer the hooks miss, or a miscounted kernel, fails here).
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from snnsearch.classify.models import create_model
from snnsearch.classify.models.config import ModelCfg
from snnsearch.depth.models.net import DepthModelSpec, build_depth_net
from snnsearch.energy import EnergyReport, estimate_energy
from snnsearch.snn.neurons import NeuronSpec

T = 3
SMALL = dict(channels=8, hidden_layers=1, hidden_width=16, embed_dim=16, heads=2, conv_blocks=3)
CLASSIFIERS = ["fc", "fc_ann", "csnn", "csnn_ann", "spikformer", "transformer_ann"]
DEPTH = [("ms_resnet", "ilif"), ("ms_resnet", "lif"), ("ms_resnet", "relu"), ("resnet", "relu")]


def _counted(net: torch.nn.Module, x: torch.Tensor, *, timesteps: int, spiking: bool
             ) -> tuple[EnergyReport, dict[str, int]]:
    net.eval()
    with FlopCounterMode(display=False) as counter:
        report = estimate_energy(net, x, timesteps=timesteps, spiking=spiking)
    prefix = type(net).__name__ + "."
    flops = {k.removeprefix(prefix): sum(v.values()) for k, v in counter.get_flop_counts().items()}
    flops["<total>"] = counter.get_total_flops()
    return report, flops


def _check(report: EnergyReport, flops: dict[str, int], batch: int) -> None:
    assert report.layers, "no layer was counted"
    executed: dict[str, float] = defaultdict(float)
    for layer in report.layers:
        executed[layer.name] += layer.executed_macs * batch
    for name, macs in executed.items():
        assert 2 * macs == pytest.approx(flops.get(name, 0), rel=1e-9), name
    assert 2 * report.executed_macs * batch == pytest.approx(flops["<total>"], rel=1e-9)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_macs_match_flop_counter(name: str) -> None:
    torch.manual_seed(0)
    cfg = ModelCfg(T=T, neuron=NeuronSpec(kind="lif"), **SMALL)
    net = create_model(name, cfg)
    spiking = not name.endswith("_ann")
    report, flops = _counted(net, torch.rand(5, 1, 28, 28), timesteps=T if spiking else 1,
                             spiking=spiking)
    _check(report, flops, 5)


@pytest.mark.parametrize(("encoder", "kind"), DEPTH)
def test_depth_net_macs_match_flop_counter(encoder: str, kind: str) -> None:
    torch.manual_seed(0)
    steps = 1 if kind == "relu" else 2
    net = build_depth_net(DepthModelSpec(encoder, 18, NeuronSpec(kind=kind, D=4), steps, 4))
    report, flops = _counted(net, torch.rand(1, 3, 64, 96), timesteps=steps,
                             spiking=kind != "relu")
    _check(report, flops, 1)
    if kind == "relu":  # nothing is discounted in an ANN: charged MACs are executed MACs
        assert report.total_macs == report.executed_macs


def test_static_first_layer_is_charged_once_of_t_executions() -> None:
    """Spikformer's SPS stem runs its first conv on the same image every step: executed T times
    (what the flop counter sees), charged once (what the hardware computes)."""
    cfg = ModelCfg(T=T, neuron=NeuronSpec(kind="lif"), **SMALL)
    report, _ = _counted(create_model("spikformer", cfg), torch.rand(2, 1, 28, 28),
                         timesteps=T, spiking=True)
    first = report.layers[0]
    assert first.kind == "mac" and first.executed_macs == pytest.approx(T * first.macs_per_image)
