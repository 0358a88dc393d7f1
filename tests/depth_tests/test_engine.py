"""The depth loops: no per-batch host syncs, one depth forward per validation batch and no pose
net, bf16 autocast, torch.compile agreeing with eager, exact activation checkpointing."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch
from spikingjelly.activation_based import functional
from torch.overrides import TorchFunctionMode

from snnsearch.depth.data.kitti import DepthSample, GpuAugment
from snnsearch.depth.engine import LossSettings, train_epoch, validate
from snnsearch.depth.models.net import DepthModelSpec, build_depth_net
from snnsearch.snn.neurons import NeuronSpec

H, W = 64, 64
SPEC = DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="ilif", D=4, v_threshold=0.5), T=2,
                      num_scales=2, channels=8)
HOST_READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__float__,
              torch.Tensor.__int__, torch.Tensor.__bool__, torch.Tensor.numpy, torch.Tensor.cpu}


# Host-side code whose tensors are on the CPU anyway: Adam's step counters, and the Eigen
# evaluation of the prediction copies (made in one transfer per validation pass).
_HOST_SIDE = ("torch/optim/", "snnsearch/depth/eval.py")


def _host_side() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if any(part in frame.f_code.co_filename for part in _HOST_SIDE):
            return True
        frame = frame.f_back
    return False


class _HostReads(TorchFunctionMode):
    """Counts tensor → Python/host reads (each one a device sync on a GPU), except in
    ``_HOST_SIDE`` code."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in HOST_READS and not _host_side():
            self.count += 1
        return func(*args, **(kwargs or {}))


def _batches(n: int, poses: bool = True) -> list[DepthSample]:
    torch.manual_seed(1)
    K = torch.tensor([[0.58 * W, 0, 0.5 * W, 0], [0, 1.92 * H, 0.5 * H, 0], [0, 0, 1, 0],
                      [0, 0, 0, 1.0]])
    motion = torch.eye(4).repeat(2, 2, 1, 1)
    motion[..., 2, 3] = 0.5
    return [DepthSample(torch.rand(2, 3, 3, H, W), K.repeat(2, 1, 1), torch.arange(2),
                        motion if poses else None) for _ in range(n)]


def _reads_per_epoch(batches: int, augment: bool) -> int:
    torch.manual_seed(0)
    net = build_depth_net(SPEC)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    aug = GpuAugment() if augment else None
    with _HostReads() as reads:
        train_epoch(net, None, _batches(batches), optimizer, torch.device("cpu"), LossSettings(),
                    aug)
    return reads.count


@pytest.mark.parametrize("augment", [False, True])
def test_train_epoch_reads_the_device_once(augment: bool) -> None:
    assert _reads_per_epoch(1, augment) == _reads_per_epoch(3, augment) == 1


def test_validation_runs_one_depth_forward_per_batch_and_reads_once() -> None:
    import numpy as np

    net = build_depth_net(SPEC)
    calls: list[int] = []
    net.register_forward_hook(lambda *_: calls.append(1))
    gt = [np.full((H, W), 10.0, np.float32)] * 6
    counts = []
    for n in (1, 3):
        calls.clear()
        with _HostReads() as reads:
            errors, loss, rates = validate(net, _batches(n), gt[: 2 * n], torch.device("cpu"),
                                           LossSettings())
        counts.append(reads.count)
        assert len(calls) == n and loss is not None and len(rates) == 16
    # Reads do not grow with batches (the Eigen metrics run on host copies made once).
    assert counts[0] == counts[1]
    _, loss, _ = validate(net, _batches(1, poses=False), gt[:2], torch.device("cpu"),
                          LossSettings())
    assert loss is None  # no known poses and no pose net: no validation loss


def test_bf16_autocast_trains() -> None:
    torch.manual_seed(0)
    net = build_depth_net(SPEC)
    before = net.decoder.disp[0][1].weight.detach().clone()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    out = train_epoch(net, None, _batches(2), optimizer, torch.device("cpu"), LossSettings(),
                      precision="bf16")
    assert torch.isfinite(torch.tensor(out["train_loss"])) and out["train_loss"] > 0
    assert not torch.equal(before, net.decoder.disp[0][1].weight)
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        train_epoch(net, None, _batches(1), optimizer, torch.device("cpu"), LossSettings(),
                    precision="fp16")


@pytest.mark.slow
def test_compiled_forward_and_gradients_match_eager() -> None:
    """torch.compile traces the stateful spiking neurons correctly (dynamo + AOT autograd; the
    "aot_eager" backend skips inductor's C++ codegen, which takes minutes on 2 CPU cores: the
    inductor output was checked by hand, max |Δ| 6e-8, docs/benchmarks.md)."""
    torch.manual_seed(0)
    net = build_depth_net(SPEC)
    for name, module in net.named_modules():
        if name.endswith("bn2"):
            torch.nn.init.constant_(module.weight, 0.5)  # live spiking branches
    image = torch.rand(2, 3, H, W)

    def run(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        net.zero_grad()
        functional.reset_net(net)
        out = model(image)[0]
        out.mean().backward()
        return out.detach(), net.encoder.layer1[1].conv1.weight.grad.clone()

    eager_out, eager_grad = run(net)
    compiled_out, compiled_grad = run(torch.compile(net, backend="aot_eager"))
    torch.testing.assert_close(compiled_out, eager_out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(compiled_grad, eager_grad, atol=1e-5, rtol=1e-3)
    assert eager_grad.abs().sum() > 0


def _heap_bytes() -> int:
    """Bytes malloc has handed out (glibc ``mallinfo2``: small blocks + mmapped large blocks,
    where torch's CPU tensors live)."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
    except (OSError, AttributeError):
        pytest.skip("glibc mallinfo2 not available")
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def test_grad_checkpoint_gives_identical_gradients_with_less_memory() -> None:
    """T=8 LIF: the gradients with per-stage activation checkpointing equal those without (the
    stages are reset before the recomputation), BN running statistics are updated once, and the
    memory held between forward and backward (allocator statistics) drops."""
    image = torch.rand(2, 3, 64, 128)
    results = {}
    for flag in (False, True):
        torch.manual_seed(0)
        spec = DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="lif", v_threshold=0.5), T=8,
                              num_scales=1, channels=16, grad_checkpoint=flag)
        net = build_depth_net(spec)
        for name, module in net.named_modules():
            if name.endswith("bn2"):
                torch.nn.init.constant_(module.weight, 0.5)
        functional.reset_net(net)
        before = _heap_bytes()
        loss = net(image)[0].mean()
        held = _heap_bytes() - before
        loss.backward()
        grads = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
        stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
        results[flag] = (grads, stats, held)
    (g0, s0, held0), (g1, s1, held1) = results[False], results[True]
    assert g0.keys() == g1.keys() and g0["encoder.layer1.1.conv1.weight"].abs().sum() > 0
    for key in g0:
        torch.testing.assert_close(g1[key], g0[key], rtol=1e-5, atol=1e-7, msg=key)
    for key in s0:
        torch.testing.assert_close(s1[key], s0[key], msg=key)
    assert held1 < 0.6 * held0, (held0 / 2**20, held1 / 2**20)
