"""Spike-driven inference of I-LIF networks: the binary expansion (T × D sub-steps) of a trained
net gives the integer-valued net's outputs, and its accumulate count is the integer accounting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from spikingjelly.activation_based import functional, monitor, neuron
from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter
from torch import nn

from snnsearch.classify.config import ClassifyConfig
from snnsearch.classify.data import load_classification
from snnsearch.classify.models import ModelCfg, create_model
from snnsearch.classify.trainable import train_classifier
from snnsearch.depth.models.net import DepthModelSpec, build_depth_net
from snnsearch.energy import estimate_energy
from snnsearch.energy.spike_driven import SpikeDrivenSynapse, to_spike_driven
from snnsearch.snn.neurons import NeuronSpec
from snnsearch.training.checkpoint import load_checkpoint
from snnsearch.training.reporter import LocalReporter

D, T = 3, 2


def _run(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Output (first tensor of it) and every spiking node's output, one fresh pass."""
    mon = monitor.OutputMonitor(net, neuron.BaseNode, function_on_output=lambda s: s.detach())
    try:
        with torch.no_grad():
            out = net(x)
    finally:
        mon.remove_hooks()
        functional.reset_net(net)
    out = out[0] if isinstance(out, (list, tuple)) else out
    return out, {name: torch.cat(mon[name], 1) for name in mon.monitored_layers if mon[name]}


def _integer_synops(net: nn.Module, wrapped: list[str], x: torch.Tensor) -> float:
    """Exact integer accounting: a count c at an input charges c × its fan-out (the weight uses
    of a convolution with all-one weights), summed over the layers the expansion wraps."""
    total = 0.0
    modules = dict(net.named_modules())

    def hook(module: nn.Module, args: tuple, _out: torch.Tensor) -> None:
        nonlocal total
        counts = args[0].flatten(0, 1)
        if not (counts.min() >= 0 and torch.equal(counts, counts.round())):
            return  # real-valued input: a MAC layer, not expanded
        if isinstance(module, nn.Linear):
            total += float(counts.sum()) * module.out_features
        else:
            ones = torch.ones_like(module.weight)
            total += float(module._conv_forward(counts, ones, None).sum())

    handles = [modules[name].register_forward_hook(hook) for name in wrapped]
    try:
        _run(net, x)
    finally:
        for h in handles:
            h.remove()
    return total


def _check_equivalent(net: nn.Module, x: torch.Tensor, timesteps: int) -> None:
    net = net.eval().double()
    x = x.double()
    driven, wrapped = to_spike_driven(net, D)
    assert wrapped, "nothing was expanded"
    binary_inputs: list[bool] = []

    def seen(_m: nn.Module, args: tuple) -> None:
        x = args[0]
        binary = x.shape[0] == timesteps * D and bool(((x == 0) | (x == 1)).all())
        binary_inputs.append(binary or not torch.equal(x, x.round()))  # or real: a MAC layer

    for m in driven.modules():
        if isinstance(m, SpikeDrivenSynapse):
            m.synapse.register_forward_pre_hook(seen)
    out_int, spikes_int = _run(net, x)
    out_bin, spikes_bin = _run(driven, x)
    assert spikes_int.keys() == spikes_bin.keys()
    active = 0.0
    for name, counts in spikes_int.items():
        assert torch.equal(counts, spikes_bin[name]), name  # every neuron, every step, exactly
        active += float(counts.sum())
    assert active > 0 and any(float(c.max()) > 1 for c in spikes_int.values())  # real counts
    torch.testing.assert_close(out_bin, out_int, rtol=0, atol=1e-10)
    assert binary_inputs and all(binary_inputs)  # count-fed layers saw T·D binary steps only

    counter = SynOpCounter()
    with torch.no_grad(), DispatchCounterMode([counter]):
        driven(x)
    functional.reset_net(driven)
    assert counter.get_total() == pytest.approx(_integer_synops(net, wrapped, x), rel=1e-12)

    # The energy protocol charges the same events either way: MACs × mean count (integer net)
    # = (D × MACs) × mean binary rate (expanded net), layer by layer.
    batch = x.shape[0]
    plain = estimate_energy(net, x, timesteps=timesteps, spiking=True, batch_size=batch)
    binary = estimate_energy(driven, x, timesteps=timesteps, spiking=True, batch_size=batch)
    assert [layer.kind for layer in plain.layers] == [layer.kind for layer in binary.layers]
    for a, b in zip(plain.layers, binary.layers, strict=True):
        assert a.ops == pytest.approx(b.ops, rel=1e-9), a.name
        if a.kind == "ac":
            assert b.rate <= 1.0 and b.macs_per_image == pytest.approx(D * a.macs_per_image)


@pytest.mark.slow
def test_trained_csnn_expansion_equals_integer_net(mnist_root: Path, tmp_path: Path) -> None:
    config = {"data_dir": str(mnist_root), "train_subset": 500, "val_size": 200, "model": "csnn",
              "channels": 8, "conv_blocks": 3, "neuron": "ilif", "D": D, "T": T, "epochs": 1,
              "batch_size": 50, "figures": False, "energy_images": 8}
    reporter = LocalReporter(tmp_path)
    train_classifier(config, reporter)
    cfg = ClassifyConfig.from_dict(config)
    net = create_model("csnn", cfg.model_cfg())
    net.load_state_dict(load_checkpoint(reporter.checkpoints[-1])["model"])
    data = load_classification("mnist", root=str(mnist_root), val_size=200, split_seed=0,
                               train_subset=500, device=torch.device("cpu"))
    _check_equivalent(net, data.val_x[:32], T)


def test_fc_and_depth_encoder_expansion_equals_integer_net() -> None:
    torch.manual_seed(0)
    spec = NeuronSpec(kind="ilif", D=D, v_threshold=0.5)
    fc = create_model("fc", ModelCfg(T=T, neuron=spec, hidden_layers=2, hidden_width=32))
    with torch.no_grad():
        fc.input_layer.weight.mul_(8.0)  # drive the first layer into multi-level counts
    _check_equivalent(fc, torch.rand(8, 1, 28, 28), T)
    depth = build_depth_net(DepthModelSpec("ms_resnet", 18, spec, T, 4))
    _check_equivalent(depth, torch.rand(1, 3, 64, 96), T)


def test_biased_synapse_is_refused() -> None:
    from spikingjelly.activation_based import layer

    with pytest.raises(ValueError, match="bias-free"):
        SpikeDrivenSynapse(layer.Linear(3, 2, bias=True, step_mode="m"), D)
