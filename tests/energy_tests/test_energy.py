"""The energy estimator against hand counts (protocol in README.md, "Energy")."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import layer

from snnsearch.classify.models.readout import repeat_over_time
from snnsearch.energy import E_AC_PJ, E_MAC_PJ, SpikeMatmul, estimate_energy
from snnsearch.snn.neurons import NeuronSpec


class TwoLayerSNN(nn.Module):
    """Linear(4→3) on the static image, repeated over T, neuron, Linear(3→2)."""

    def __init__(self, spec: NeuronSpec, T: int) -> None:
        super().__init__()
        self.T = T
        self.fc1 = nn.Linear(4, 3, bias=False)
        self.sn = spec.build()
        self.fc2 = layer.Linear(3, 2, bias=False, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.sn(repeat_over_time(self.fc1(x), self.T)))


def test_if_net_matches_hand_count() -> None:
    T = 3
    net = TwoLayerSNN(NeuronSpec(kind="if", v_threshold=1.0), T)
    with torch.no_grad():
        net.fc1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0.6, 0, 0, 0]]))
    x = torch.tensor([[1.0, 0.5, 0.25, 0.125]])
    # Neuron inputs per step: 1.0 (spikes every step), 0 (never), 0.6 (IF: spikes at t=1 only).
    # Spikes: 3 + 0 + 1 = 4 of 3 neurons × 3 steps → fr = 4/9.
    report = estimate_energy(net, x, timesteps=T, spiking=True)
    first, second = report.layers
    assert (first.kind, first.macs_per_image) == ("mac", 12)  # 4·3, counted once (static input)
    assert second.kind == "ac" and second.macs_per_image == 3 * 2 * T
    assert second.rate == pytest.approx(4 / 9)
    expected = (12 * E_MAC_PJ + (4 / 9) * T * 6 * E_AC_PJ) * 1e-9
    assert report.total_mj == pytest.approx(expected)


def test_ilif_counts_events_not_divided_by_d() -> None:
    T, D = 2, 4
    net = TwoLayerSNN(NeuronSpec(kind="ilif", D=D, tau=2.0), T)
    with torch.no_grad():
        net.fc1.weight.copy_(torch.tensor([[3.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    report = estimate_energy(net, x, timesteps=T, spiking=True)
    # I-LIF: H = V/2 + 3 → counts round(clip(H,0,4)): t0: 3 (V=0), t1: H=0+3 → 3 → mean = 6/6 = 1.0
    counts = 6 / (3 * T)
    assert report.layers[1].rate == pytest.approx(counts)
    assert report.layers[1].energy_mj == pytest.approx(counts * T * 6 * E_AC_PJ * 1e-9)


def test_ann_is_all_macs() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 5))
    report = estimate_energy(net, torch.rand(2, 1, 4, 4), timesteps=1, spiking=False)
    conv_macs = 2 * 2 * 2 * (1 * 3 * 3)  # out elements × kernel
    assert [lay.macs_per_image for lay in report.layers] == [conv_macs, 8 * 5]
    assert report.total_mj == pytest.approx((conv_macs + 40) * E_MAC_PJ * 1e-9)


def test_spike_matmul_counted_at_event_rate() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mm = SpikeMatmul()

        def forward(self, a: torch.Tensor) -> torch.Tensor:
            return self.mm(a, torch.ones(4, 2))

    a = torch.tensor([[[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]]])  # [1, 2, 4], rate 3/8
    report = estimate_energy(M(), a, timesteps=1, spiking=True)
    (mm,) = report.layers
    assert mm.kind == "ac" and mm.macs_per_image == 2 * 2 * 4 and mm.rate == pytest.approx(3 / 8)
