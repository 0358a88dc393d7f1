"""Every model family: forward/backward shapes for several knobs, no NaNs, no state leaks."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional, monitor, neuron

from snnsearch.classify.models import ModelCfg, create_model, list_models
from snnsearch.classify.models.spikformer import SelfAttention
from snnsearch.snn.neurons import NeuronSpec

SMALL = dict(channels=8, embed_dim=16, heads=2, hidden_width=16)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("kind", ["if", "lif", "plif", "ilif"])
@pytest.mark.parametrize("T", [1, 3])
def test_forward_backward_shapes(name: str, kind: str, T: int) -> None:
    cfg = ModelCfg(T=T, neuron=NeuronSpec(kind=kind, D=2), hidden_layers=1, **SMALL)
    model = create_model(name, cfg)
    out = model(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    functional.reset_net(model)


@pytest.mark.parametrize(("knob", "values"), [("conv_blocks", [1, 2, 4]), ("hidden_layers", [0, 2]),
                                              ("blocks", [1, 2])])
def test_depth_knobs_add_layers(knob: str, values: list[int]) -> None:
    name, layer_type, base = {"conv_blocks": ("csnn", torch.nn.Conv2d, 0),
                              "hidden_layers": ("fc", torch.nn.Linear, 1),
                              "blocks": ("spikformer", SelfAttention, 0)}[knob]
    for value in values:
        model = create_model(name, ModelCfg(T=2, **{**SMALL, knob: value}))
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
        found = sum(isinstance(m, layer_type) for m in model.modules())
        assert found == value + base


@pytest.mark.parametrize("name", ["fc", "csnn", "spikformer"])
def test_no_state_leaks_between_batches(name: str) -> None:
    """Same batch twice with reset in between gives the same spikes in every layer; without a
    reset the membrane potentials carry over and the spikes differ."""
    torch.manual_seed(0)
    # train mode: BN normalises with batch statistics, so a random-init net already spikes.
    model = create_model(name, ModelCfg(T=2, neuron=NeuronSpec(kind="lif", v_threshold=0.5), **SMALL))
    x = torch.rand(4, 1, 28, 28) * 2

    def all_spikes() -> torch.Tensor:
        with monitor.OutputMonitor(model, neuron.BaseNode) as mon, torch.no_grad():
            out = model(x)
            return torch.cat([out.flatten()] + [r.flatten() for r in mon.records])

    first = all_spikes()
    functional.reset_net(model)
    again = all_spikes()
    leaked = all_spikes()  # no reset in between
    assert first.sum() > 0
    assert torch.equal(first, again)
    assert not torch.equal(again, leaked)


def test_ann_twin_has_same_parameter_names() -> None:
    for snn, ann in [("fc", "fc_ann"), ("csnn", "csnn_ann"), ("spikformer", "transformer_ann")]:
        cfg = ModelCfg(T=2, **SMALL)
        assert create_model(snn, cfg).state_dict().keys() == create_model(ann, cfg).state_dict().keys()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"T": 0}, "T must be >= 1"), ({"embed_dim": 10, "heads": 4}, "divisible by heads"),
     ({"conv_blocks": 0}, "conv_blocks must be >= 1")],
)
def test_bad_model_config(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelCfg(**kwargs)


def test_unknown_model_and_bad_patch() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet'; choose one of"):
        create_model("resnet", ModelCfg())
    with pytest.raises(ValueError, match="patch_size must be 4"):
        create_model("spikformer", ModelCfg(patch_size=7, embed_dim=16, heads=2))
