"""Energy models: constants against their sources, hand-counted prices, break-even rates."""

from __future__ import annotations

import math

import pytest
import torch
from spikingjelly.activation_based import layer
from spikingjelly.activation_based.op_counter import SimpleEnergyCostConfig
from torch import nn

from snnsearch.classify.models.readout import repeat_over_time
from snnsearch.energy import (
    breakeven_rate,
    energy_summary,
    estimate_energy,
    get_model,
    model_names,
    price,
)
from snnsearch.energy.models import check_choice, sources
from snnsearch.snn.neurons import NeuronSpec


class TwoLayer(nn.Module):
    """Linear(4→3) on the static image, repeated over T, neuron, Linear(3→2)."""

    def __init__(self, spec: NeuronSpec, T: int) -> None:
        super().__init__()
        self.T = T
        self.fc1 = nn.Linear(4, 3, bias=False)
        self.sn = spec.build()
        self.fc2 = layer.Linear(3, 2, bias=False, step_mode="m")
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0.6, 0, 0, 0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.sn(repeat_over_time(self.fc1(x), self.T)))


X = torch.tensor([[1.0, 0.5, 0.25, 0.125]])


def _if_net() -> tuple:
    """IF, T=3: fc1 12 MACs once; neurons spike 3 + 0 + 1 = 4 of 9 → fc2 18 MACs × 4/9 = 8
    events; 9 neuron updates. ANN twin: 12 + 6 MACs, 3 ReLU activations."""
    snn = estimate_energy(TwoLayer(NeuronSpec(kind="if"), 3), X, timesteps=3, spiking=True)
    twin = estimate_energy(TwoLayer(NeuronSpec(kind="relu"), 1), X, timesteps=1, spiking=False)
    return snn, twin


def test_compute_presets_match_spikingjelly_and_horowitz() -> None:
    fp32, int8 = SimpleEnergyCostConfig.fp32(), SimpleEnergyCostConfig.int8()
    assert (get_model("compute45").mac_pj, get_model("compute45").ac_pj) == (
        fp32.e_mac_pj, fp32.e_ac_pj)
    assert (get_model("int8").mac_pj, get_model("int8").ac_pj) == (int8.e_mac_pj, int8.e_ac_pj)
    # Horowitz 2014, 45 nm: fp32 mult 3.7 + add 0.9; int8 mult 0.2 + add 0.03.
    assert get_model("compute45").mac_pj == pytest.approx(3.7 + 0.9)
    assert get_model("int8").mac_pj == pytest.approx(0.2 + 0.03)
    assert model_names()[0] == "compute45"
    assert all(set(get_model(n).sources) <= set(sources()) for n in model_names())


def test_sram_access_energy_follows_horowitz_table() -> None:
    mem = get_model("compute45+memory").memory
    assert mem is not None
    for kb, pj in ((8, 10.0), (32, 20.0), (1024, 100.0)):
        assert mem.access_pj(64, kb) == pytest.approx(pj)
    assert mem.access_pj(32, 32) == pytest.approx(10.0)  # a 32-bit word: half a 64-bit read
    assert mem.access_pj(64, 16) == pytest.approx(math.sqrt(10.0 * 20.0))  # log-log midpoint
    assert mem.access_pj(64, 1) == pytest.approx(10.0)  # clamped to the table
    assert mem.access_pj(64, 8192) == pytest.approx(100.0)


def test_compute45_keeps_the_report_protocol() -> None:
    snn, _ = _if_net()
    priced = price(snn, get_model("compute45"))
    assert priced.total_mj == pytest.approx(snn.total_mj)
    assert priced.total_mj == pytest.approx((12 * 4.6 + 8 * 0.9) * 1e-9)
    assert priced.memory_mj == 0.0


def test_memory_model_hand_count() -> None:
    snn, twin = _if_net()
    model = get_model("compute45+memory")
    priced = price(snn, model, sram_kb=32)  # 32-bit word at 32 KB: 10 pJ per access
    assert priced.compute_mj == pytest.approx((12 * 4.6 + 8 * 0.9) * 1e-9)  # IF: no leak
    # weights: 12 MACs + 8 events; membranes: 9 updates × (read + write)
    assert priced.memory_mj == pytest.approx(((12 + 8) * 10 + 9 * 2 * 10) * 1e-9)
    ann = price(twin, model, sram_kb=32)  # 18 weight reads + 3 activations × (write + read)
    assert ann.total_mj == pytest.approx((18 * 4.6 + 18 * 10 + 3 * 2 * 10) * 1e-9)
    lif = estimate_energy(TwoLayer(NeuronSpec(kind="lif"), 3), X, timesteps=3, spiking=True)
    leak = sum(r.compute_pj for r in price(lif, model).rows if r.kind == "spiking")
    assert leak == pytest.approx(9 * 4.6)


@pytest.mark.parametrize("name", ["compute45", "compute45+memory", "int8", "int8+memory"])
def test_breakeven_rate_is_where_snn_costs_what_the_twin_costs(name: str) -> None:
    snn, twin = _if_net()
    model = get_model(name)
    ann_mj = price(twin, model).total_mj
    rate = breakeven_rate(snn, ann_mj, model)
    assert rate is not None
    if rate > 0:  # rescale the observed events to that synaptic rate: energies must meet
        layers = [type(x)(x.name, x.kind, x.macs_per_image,
                          x.rate * rate / snn.synaptic_rate if x.kind == "ac" else x.rate,
                          x.energy_mj, x.executed_macs) for x in snn.layers]
        scaled = type(snn)(layers, snn.sites)
        assert price(scaled, model).total_mj == pytest.approx(ann_mj, rel=1e-9)
    if name == "compute45":
        assert rate == pytest.approx((18 * 4.6 - 12 * 4.6) / (0.9 * 18))


def test_summary_reports_every_model_and_the_chosen_one() -> None:
    snn, twin = _if_net()
    summary = energy_summary(snn, twin=twin, model="int8+memory", sram_kb=8)
    m = summary.metrics
    assert m["energy_mj"] == m["energy/int8_memory_mj"]
    assert m["energy_mj"] == pytest.approx(m["energy_compute_mj"] + m["energy_memory_mj"])
    assert m["energy_memory_mj"] > 0
    for slug in ("compute45", "compute45_memory", "int8", "int8_memory"):
        assert m[f"energy_ratio/{slug}"] == pytest.approx(
            m[f"energy/{slug}_mj"] / price(twin, get_model(slug.replace("_", "+")),
                                           sram_kb=8).total_mj)
        assert f"breakeven_rate/{slug}" in m
    assert m["synaptic_rate"] == pytest.approx(4 / 9)
    assert [row["kind"] for row in summary.table] == ["mac", "ac", "spiking"]
    total = sum(row["int8+memory/compute_mj"] + row["int8+memory/memory_mj"]
                for row in summary.table)
    assert total == pytest.approx(m["energy_mj"])
    ann = energy_summary(twin, twin=None).metrics
    assert ann["energy_ratio/compute45"] == 1.0 and "breakeven_rate/compute45" not in ann


def test_bad_choice_is_one_line() -> None:
    with pytest.raises(ValueError, match="energy_model must be one of compute45, "):
        check_choice("loihi", 32)
    with pytest.raises(ValueError, match="sram_kb must be > 0"):
        check_choice("int8", 0)


def test_sweep_preflight_refuses_a_bad_energy_choice_before_ray() -> None:
    from snnsearch.sweep.preflight import check_trial_inputs

    check_trial_inputs("classify", {"energy_model": "int8+memory", "sram_kb": 1024})
    with pytest.raises(ValueError, match="energy_model must be one of"):
        check_trial_inputs("classify", {"energy_model": "loihi"})
    with pytest.raises(ValueError, match="sram_kb must be > 0"):
        check_trial_inputs("depth", {"sram_kb": 0})
