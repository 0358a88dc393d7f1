"""Depth/pose networks: shapes at every scale, neuron knobs, pretraining errors, energy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from spikingjelly.activation_based import functional

from snnsearch.depth.engine import firing_monitor
from snnsearch.depth.eval import disp_to_depth
from snnsearch.depth.models.encoders import SpikingResNetEncoder, load_encoder_checkpoint
from snnsearch.depth.models.net import (
    DepthModelSpec,
    build_depth_net,
    build_pose_net,
    set_initial_depth,
)
from snnsearch.energy import estimate_energy
from snnsearch.snn.neurons import NeuronSpec
from snnsearch.training.checkpoint import save_checkpoint

H, W = 64, 96
CASES = [
    DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="ilif", D=4), T=2),
    DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="lif"), T=2),
    DepthModelSpec("ms_resnet", 34, NeuronSpec(kind="ilif", D=8), T=1),
    DepthModelSpec("resnet", 18),
]


@pytest.mark.parametrize(
    "spec", CASES, ids=lambda s: f"{s.encoder}{s.depth}-{s.neuron.kind}-T{s.T}"
)
def test_shapes_at_every_scale_and_finite_gradients(spec: DepthModelSpec) -> None:
    torch.manual_seed(0)
    net = build_depth_net(spec)
    image = torch.rand(2, 3, H, W)
    feats = net.encoder(image)
    assert [f.shape[1] for f in feats] == [64, 64, 128, 256, 512]
    assert [f.shape[-2:] for f in feats] == [(H >> k, W >> k) for k in range(1, 6)]
    functional.reset_net(net)
    disps = net(image)
    assert [d.shape for d in disps] == [(2, 1, H >> s, W >> s) for s in range(4)]
    assert all(((d > 0) & (d < 1)).all() for d in disps)
    sum(d.mean() for d in disps).backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    first_conv = next(m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.weight.grad.abs().sum() > 0  # reaches the stem (possibly via shortcuts)


def _live(net: torch.nn.Module) -> torch.nn.Module:
    """Non-degenerate BN weights: MS-ResNet zero-initialises each block's last BN, which makes
    every spiking branch output exactly 0 at initialisation (only the shortcuts carry signal)."""
    for name, module in net.named_modules():
        if name.endswith("bn2"):
            torch.nn.init.constant_(module.weight, 0.5)
    return net


def _encoder_out(spec: DepthModelSpec, live: bool, image: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(0)
    net = build_depth_net(spec)
    if live:
        _live(net)
    net.eval()
    with torch.no_grad():
        out = net.encoder(image)[-1]
    functional.reset_net(net)
    return out


@pytest.mark.parametrize("knob", ["T", "D"])
def test_T_and_D_change_the_encoder_output(knob: str) -> None:
    image = torch.rand(1, 3, 64, 64)
    # v_threshold 0.5 = DepthConfig's default (at 1.0 eval-mode layers barely fire at init).
    lo = DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="ilif", D=1, v_threshold=0.5), T=1)
    hi = DepthModelSpec(
        "ms_resnet", 18, NeuronSpec(kind="ilif", D=4 if knob == "D" else 1, v_threshold=0.5),
        T=4 if knob == "T" else 1,
    )
    # Zero-initialised: the spiking branches are inert and the knob changes nothing (up to the
    # rounding of the mean over T).
    inert = (_encoder_out(lo, False, image) - _encoder_out(hi, False, image)).abs().max()
    assert inert < 1e-6, inert
    a, b = _encoder_out(lo, True, image), _encoder_out(hi, True, image)
    relative = (a - b).abs().mean() / a.abs().mean()
    assert relative > 0.05, relative  # measured 0.25 (D) and 0.32 (T)


@pytest.mark.parametrize(
    "neuron", [NeuronSpec(kind="ilif", D=4, v_threshold=0.5), NeuronSpec(kind="lif", v_threshold=0.5)]
)
def test_spiking_convs_of_layer1_get_gradients(neuron: NeuronSpec) -> None:
    """Through the spikes (surrogate gradients), not only through the non-spiking shortcut: with
    non-degenerate BN weights, and after one optimiser step from the default initialisation."""
    torch.manual_seed(0)
    spec = DepthModelSpec("ms_resnet", 18, neuron, T=2, num_scales=1)
    image = torch.rand(2, 3, 64, 64)

    def layer1_grads(net: torch.nn.Module) -> list[float]:
        net.zero_grad()
        functional.reset_net(net)
        net(image)[0].mean().backward()
        block = net.encoder.layer1[1]
        return [float(c.weight.grad.abs().sum()) for c in (block.conv1, block.conv2)]

    inert = build_depth_net(spec)
    assert layer1_grads(inert) == [0.0, 0.0]  # what the old test could not see
    assert min(layer1_grads(_live(build_depth_net(spec)))) > 0
    optimizer = torch.optim.Adam(inert.parameters(), lr=1e-3)
    layer1_grads(inert)
    optimizer.step()
    assert min(layer1_grads(inert)) > 0


@pytest.mark.parametrize("D", [1, 2, 4, 8])
def test_ilif_emits_integer_counts_up_to_D(D: int) -> None:
    net = build_depth_net(
        DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="ilif", D=D, v_threshold=0.1), 2)
    )
    outs: list[torch.Tensor] = []
    hook = net.encoder.layer1[0].spike1.register_forward_hook(lambda m, a, o: outs.append(o))
    net(torch.rand(1, 3, H, W))
    hook.remove()
    assert outs[0].shape[0] == 2  # [T, B, C, H, W]
    assert torch.equal(outs[0], outs[0].round()) and outs[0].max() == D and outs[0].min() == 0


def test_firing_monitor_sees_every_spiking_layer() -> None:
    net = build_depth_net(DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="lif"), 1))
    with firing_monitor(net) as rates:
        net(torch.rand(1, 3, H, W))
    assert len(rates) == 16 and all(len(v) == 1 for v in rates.values())
    assert any(k.startswith("encoder.layer4.") for k in rates)


def test_pose_net_pairs() -> None:
    axisangle, translation = build_pose_net()(torch.rand(3, 3, H, W), torch.rand(3, 3, H, W))
    assert axisangle.shape == translation.shape == (3, 3)
    # the zero-initialised pose head starts from the identity motion (see PoseDecoder)
    assert torch.equal(translation, torch.zeros(3, 3))
    assert torch.equal(axisangle, torch.zeros(3, 3))


def test_input_size_must_be_multiple_of_32() -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        build_depth_net(DepthModelSpec("resnet"))(torch.rand(1, 3, 50, 96))


def test_pretrain_errors() -> None:
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        build_depth_net(DepthModelSpec("ms_resnet"), "checkpoint:/no_such_dir")
    with pytest.raises(ValueError, match="unknown pretrain"):
        build_depth_net(DepthModelSpec("ms_resnet"), "random")


def test_imagenet_weights_load_or_fail_clearly() -> None:
    try:
        net = build_depth_net(DepthModelSpec("resnet"), "imagenet")
    except RuntimeError as err:  # offline CI: no cached weights
        assert "pretrain=checkpoint" in str(err) and "resnet18" in str(err)
    else:
        assert net.encoder.bn1.running_var.mean() != 1.0  # ImageNet statistics, not a fresh init


def test_encoder_checkpoint_round_trip_and_mismatch(tmp_path: Path) -> None:
    from spikingjelly.activation_based.model.ms_resnet import ms_resnet18

    spec = DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="ilif"), 1)
    # A classification MS-ResNet-18 (with its head) saved the way this project saves models.
    classifier = ms_resnet18(T=1, num_classes=10)
    save_checkpoint(
        tmp_path / "cls", {"model": {f"net.{k}": v for k, v in classifier.state_dict().items()}}
    )
    net = build_depth_net(spec, f"checkpoint:{tmp_path / 'cls'}")
    assert torch.equal(net.encoder.layer3[1].conv1.weight, classifier.layer3[1].conv1.weight)
    # An MNIST-style 1-channel MS-ResNet does not fit a 3-channel encoder.
    gray = ms_resnet18(T=1, in_channels=1, num_classes=10)
    save_checkpoint(tmp_path / "gray", {"model": gray.state_dict()})
    with pytest.raises(ValueError, match=r"does not fit.*stem.0.weight"):
        build_depth_net(spec, f"checkpoint:{tmp_path / 'gray'}")
    # An ANN ResNet checkpoint holds no MS-ResNet trunk.
    save_checkpoint(
        tmp_path / "ann", {"model": build_depth_net(DepthModelSpec("resnet")).state_dict()}
    )
    with pytest.raises(ValueError, match="does not hold a SpikingResNetEncoder"):
        load_encoder_checkpoint(SpikingResNetEncoder(neuron=NeuronSpec(), T=1), tmp_path / "ann")


def test_ann_depth_net_energy_matches_the_analytic_figure() -> None:
    """monodepth2 ResNet-18 depth net at 640×192: ≈ 8.0 GMAC ≈ 37 mJ at 4.6 pJ (docs/depth.md)."""
    net = build_depth_net(DepthModelSpec("resnet", 18))
    report = estimate_energy(net, torch.rand(1, 3, 192, 640), timesteps=1, spiking=False)
    assert report.total_macs == pytest.approx(8.013e9, rel=1e-3)
    assert report.total_mj == pytest.approx(36.86, rel=1e-3)


def test_spiking_depth_net_energy_counts_events() -> None:
    net = build_depth_net(DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="ilif", D=4), 2))
    report = estimate_energy(net, torch.rand(1, 3, H, W), timesteps=2, spiking=True)
    kinds = {layer.name: layer.kind for layer in report.layers}
    assert kinds["encoder.stem.0"] == "mac" and kinds["encoder.layer1.0.conv1"] == "ac"
    assert kinds["decoder.disp.0.1"] == "mac" and report.total_mj > 0


def test_initial_depth_sets_the_untrained_prediction() -> None:
    torch.manual_seed(0)
    net = build_depth_net(DepthModelSpec(encoder="resnet", num_scales=2))
    set_initial_depth(net, 10.0)
    net.eval()
    with torch.no_grad():
        _, depth = disp_to_depth(net(torch.rand(1, 3, 64, 128))[0], 0.1, 100.0)
    assert 3.0 < float(depth.median()) < 30.0  # monodepth2's init: ≈ 0.2 m
    with pytest.raises(ValueError, match=r"init_depth must be in \(0.1, 100.0\)"):
        set_initial_depth(net, 500.0)


def test_resnet_weights_transfer_into_ms_resnet_tensor_by_tensor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """pretrain=imagenet for ms_resnet: every torchvision conv/BN tensor lands on its MS-ResNet
    counterpart (checked on a torchvision ResNet-18 with random weights: the ImageNet file is not
    downloadable here), and the one log line names what had none."""
    import torchvision

    from snnsearch.depth.models.encoders import resnet_to_ms_resnet_name, transfer_resnet

    torch.manual_seed(0)
    source = torchvision.models.resnet18().state_dict()
    for value in source.values():
        if value.is_floating_point():
            value.normal_()  # distinct values everywhere, BN statistics included
    encoder = SpikingResNetEncoder(neuron=NeuronSpec(kind="ilif"), T=1)
    missing = transfer_resnet(encoder, source, origin="test resnet18")
    own = encoder.state_dict()
    for key, value in source.items():
        if key.startswith("fc."):
            continue
        assert torch.equal(own[resnet_to_ms_resnet_name(key)], value), key
    assert resnet_to_ms_resnet_name("conv1.weight") == "stem.0.weight"
    assert resnet_to_ms_resnet_name("bn1.running_var") == "stem.1.running_var"
    assert resnet_to_ms_resnet_name("layer2.1.bn1.weight") == "layer2.1.bn1.weight"
    assert {k.rsplit(".", 1)[0] for k in missing} == {"layer1.0.downsample.0",
                                                      "layer1.0.downsample.1"}
    assert "no counterpart (kept at init): layer1.0.downsample.0.weight" in caplog.text
    narrow = SpikingResNetEncoder(neuron=NeuronSpec(kind="ilif"), T=1, channels=16)
    with pytest.raises(ValueError, match="stem.0.weight has shape .* need channels=64"):
        transfer_resnet(narrow, source)


def test_spiking_imagenet_checkpoint_in_spikingjelly_layout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """checkpoint:<file> with a spikingjelly MSResNet state dict (ImageNet head, saved by a
    DistributedDataParallel run: ``module.`` prefix, bare .pth file)."""
    from spikingjelly.activation_based.model.ms_resnet import ms_resnet18

    torch.manual_seed(1)
    imagenet_snn = ms_resnet18(T=4, num_classes=1000)
    state = {f"module.{k}": v for k, v in imagenet_snn.state_dict().items()}
    for key, value in state.items():
        if value.is_floating_point():
            value.normal_()
    torch.save(state, tmp_path / "ms_resnet18_imagenet.pth")
    net = build_depth_net(DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="ilif"), 2),
                          f"checkpoint:{tmp_path / 'ms_resnet18_imagenet.pth'}")
    own = net.encoder.state_dict()
    assert len(own) == len(state) - 2
    for key, value in own.items():
        assert torch.equal(value, state[f"module.{key}"]), key
    assert "unused: module.head.bias, module.head.weight" in caplog.text
