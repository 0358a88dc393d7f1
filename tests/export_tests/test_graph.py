"""The step network and its ``.nir`` file without a sweep: BN folding is exact, the file runs like
the model, what NIR cannot hold is refused in one line, synaptic events are counted exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional

from snnsearch.classify.config import ClassifyConfig
from snnsearch.classify.models import create_model
from snnsearch.export.graph import DT, NotExportable, export_nir, load_trained, step_network
from snnsearch.export.simulate import run_spikingjelly_nir, run_trained, synaptic_events

BASE = {"dataset": "mnist", "T": 4, "neuron": "lif", "tau": 2.0, "v_threshold": 0.3}


def _trained_like(**values: object) -> dict:
    """A checkpoint state of a randomly initialised model whose BatchNorms have non-trivial
    running statistics (as after training), so folding has something to get wrong."""
    cfg = ClassifyConfig.from_dict({**BASE, **values})
    torch.manual_seed(0)
    model = create_model(cfg.model, cfg.model_cfg())
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            module.weight.data.mul_(4.0)  # random weights this size keep every layer firing
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.3)
    return {"model": model.state_dict(), "config": cfg.to_dict()}


def _images(n: int = 64) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("values", [
    {"model": "fc", "hidden_layers": 1, "hidden_width": 32},
    {"model": "csnn", "channels": 4, "conv_blocks": 3, "pool": "avg"},
    {"model": "csnn", "channels": 4, "conv_blocks": 2, "pool": "avg", "neuron": "plif"},
    {"model": "fc", "hidden_layers": 1, "hidden_width": 32, "neuron": "if"},
])
def test_the_nir_file_computes_what_the_model_computes(values: dict, tmp_path: Path) -> None:
    model, cfg = load_trained(_trained_like(**values))
    step = step_network(model, cfg)
    assert len(step.folded) == (values.get("conv_blocks", 0) if cfg.model == "csnn" else 0)
    path = tmp_path / "m.nir"
    export_nir(step, cfg, path)
    x = _images()
    ours = run_trained(model, x, T=cfg.T, batch_size=32)
    graph = run_spikingjelly_nir(str(path), x, T=cfg.T, dt=DT, batch_size=32)
    assert ours.counts.sum() > 0  # the threshold is low enough that the output fires
    assert torch.equal(ours.counts, graph.counts)
    assert list(ours.layer_spikes.values()) == list(graph.layer_spikes.values())


def test_batchnorm_is_folded_exactly() -> None:
    model, cfg = load_trained(_trained_like(model="csnn", channels=4, pool="avg"))
    step = step_network(model, cfg)
    x = _images(8)
    with torch.no_grad():
        ref = model.stem(x)
        folded = step.net[0](x)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in step.net.modules())
    torch.testing.assert_close(folded, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("values", "names"), [
    ({"model": "csnn", "channels": 4, "pool": "max"}, ("features.1", "MaxPool2d", "pool: avg")),
    ({"model": "fc", "neuron": "ilif", "D": 4}, ("neuron=ilif", "D=4", "neuron: lif")),
    ({"model": "spikformer", "embed_dim": 16, "heads": 2}, ("spikformer", "attention",
                                                            "model: fc or csnn")),
    ({"model": "fc_ann"}, ("fc_ann", "model: fc or csnn")),
])
def test_what_nir_cannot_hold_is_refused_in_one_line(values: dict, names: tuple) -> None:
    with pytest.raises(NotExportable) as err:
        load_trained(_trained_like(**values))
    message = str(err.value)
    assert "\n" not in message
    for name in names:
        assert name in message


def test_soft_reset_is_refused_with_the_layer_named() -> None:
    model, cfg = load_trained(_trained_like(model="fc", hidden_layers=1, hidden_width=8))
    model.hidden[0].v_reset = None  # spikingjelly's soft reset (no knob of ours sets it)
    with pytest.raises(NotExportable, match=r"layer hidden\.0 .*soft reset"):
        step_network(model, cfg)


def test_a_batchnorm_after_no_conv_is_refused() -> None:
    model, cfg = load_trained(_trained_like(model="fc", hidden_layers=1, hidden_width=8))
    model.hidden = nn.Sequential(model.hidden[0], nn.BatchNorm1d(8), model.hidden[1])
    with pytest.raises(NotExportable, match=r"hidden\.1 \(BatchNorm\).*cannot be folded"):
        step_network(model, cfg)


def test_synaptic_events_count_each_spike_times_its_synapses() -> None:
    conv = nn.Conv2d(3, 5, 3, padding=1)
    spikes = (torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(2)) > 0.7).float()
    brute = 0.0
    for b, c, i, j in spikes.nonzero().tolist():  # fan-out of each spike, borders included
        reach = sum(1 for oi in range(6) for oj in range(6)
                    if abs(oi - i) <= 1 and abs(oj - j) <= 1)
        brute += reach * conv.out_channels
    assert synaptic_events(conv, spikes) == brute
    linear = nn.Linear(10, 7)
    x = (torch.rand(4, 10) > 0.5).float()
    assert synaptic_events(linear, x) == float(x.sum()) * 7


def test_a_served_model_answers_every_call_from_rest() -> None:
    from snnsearch.export.mlflow_models import ServableSNN

    model, _ = load_trained(_trained_like(model="fc", hidden_layers=1, hidden_width=16))
    servable = ServableSNN(model).eval()
    x = _images(4)
    with torch.no_grad():
        first, second = servable(x), servable(x)
        functional.reset_net(model)
    assert torch.equal(first, second)


def test_a_layer_spikingjelly_cannot_export_is_refused_not_raised(monkeypatch) -> None:
    """spikingjelly's exporter raises NotImplementedError for a module it has no NIR node for
    (a newer layer than its converter knows): that becomes NotExportable, which the sweep's
    export records per trial instead of ending the export of the others."""
    from spikingjelly.activation_based import nir_exchange

    def refuse(*args, **kwargs):
        raise NotImplementedError("no NIR node for Dropout2d")

    monkeypatch.setattr(nir_exchange, "export_to_nir", refuse)
    model, cfg = load_trained(_trained_like(model="fc", hidden_layers=1, hidden_width=8))
    with pytest.raises(NotExportable, match="spikingjelly's NIR exporter: no NIR node for "
                                            "Dropout2d"):
        export_nir(step_network(model, cfg), cfg)
