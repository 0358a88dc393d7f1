"""One training epoch and one validation pass of self-supervised depth (pure functions over the
models, loader and optimiser; the trainable assembles them).

Neither loop synchronises with the device per batch: losses, firing rates and predictions stay on
the device and are read once per epoch (a ``float()`` per batch stalls a GPU step on the host).
``precision="bf16"`` runs forward and loss under bf16 autocast.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from snnsearch.depth.data.kitti import FRAME_IDS, DepthSample, to_unit
from snnsearch.depth.eval import DepthErrors, disp_to_depth, evaluate_disparities
from snnsearch.depth.geometry import transformation_from_parameters
from snnsearch.depth.losses import DepthLoss, depth_loss


@dataclass(frozen=True)
class LossSettings:
    smoothness: float = 1e-3
    min_depth: float = 0.1
    max_depth: float = 100.0


def _reset(net: nn.Module) -> None:
    from spikingjelly.activation_based import functional

    # A torch.compile'd net resets through its original module (spikingjelly caches module lists).
    functional.reset_net(getattr(net, "_orig_mod", net))


PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast on ``device`` for ``precision="bf16"``, a disabled context for fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def source_poses(
    pose_net: nn.Module, frames: torch.Tensor, frame_ids: Sequence[int] = FRAME_IDS
) -> list[torch.Tensor]:
    """Target→source transforms for every source frame; pairs are fed in temporal order
    (monodepth2), so the pose of a past frame is the inverse of the predicted motion."""
    poses = []
    for i, fid in enumerate(frame_ids[1:], start=1):
        pair = (frames[:, i], frames[:, 0]) if fid < 0 else (frames[:, 0], frames[:, i])
        axisangle, translation = pose_net(*pair)
        poses.append(transformation_from_parameters(axisangle, translation, invert=fid < 0))
    return poses


def compute_loss(
    depth_net: nn.Module,
    pose_net: nn.Module | None,
    net_input: torch.Tensor,
    frames: torch.Tensor,
    K: torch.Tensor,
    settings: LossSettings,
    known_poses: torch.Tensor | None = None,
) -> DepthLoss:
    """Loss of one batch; ``net_input`` may be colour-jittered, ``frames`` are the loss targets.

    ``known_poses`` ``[B, F-1, 4, 4]`` (``pose=known``) replace the pose network's prediction.
    """
    _reset(depth_net)
    disps = depth_net(net_input[:, 0])
    if known_poses is not None:
        poses = list(known_poses.unbind(1))
    elif pose_net is None:
        raise ValueError("batches without known poses need the pose network (pose=net)")
    else:
        poses = source_poses(pose_net, net_input)
    sources = [frames[:, i] for i in range(1, frames.shape[1])]
    # The loss (warping, SSIM) runs in fp32 even under bf16 autocast: only the networks are cast.
    with torch.autocast(frames.device.type, enabled=False):
        return depth_loss(
            [d.float() for d in disps],
            frames[:, 0],
            sources,
            [p.float() for p in poses],
            K,
            smoothness_weight=settings.smoothness,
            min_depth=settings.min_depth,
            max_depth=settings.max_depth,
        )


def train_epoch(
    depth_net: nn.Module,
    pose_net: nn.Module | None,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    settings: LossSettings,
    augment: nn.Module | None = None,
    precision: str = "fp32",
) -> dict[str, float]:
    """One pass over ``loader``; returns mean losses, images/s and seconds.

    ``pose_net`` may be None when every batch carries known poses.
    """
    depth_net.train()
    if pose_net is not None:
        pose_net.train()
    sums = torch.zeros(2, device=device)  # total, photometric: summed on the device
    steps, images = 0, 0
    start = time.perf_counter()
    for batch in loader:
        frames = to_unit(batch.frames.to(device, non_blocking=True))  # uint8 → float on device
        K = batch.K.to(device, non_blocking=True)
        poses = batch.poses.to(device, non_blocking=True) if batch.poses is not None else None
        net_input = frames
        if augment is not None:
            net_input, frames, poses = augment(frames, poses)
        with autocast(device, precision):
            loss = compute_loss(depth_net, pose_net, net_input, frames, K, settings, poses)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        optimizer.step()
        sums += torch.stack([loss.total.detach(), loss.photometric.detach()]).float()
        steps += 1
        images += frames.shape[0]
    total, photometric = (sums / max(steps, 1)).tolist()  # the epoch's one host sync
    seconds = time.perf_counter() - start
    return {
        "train_loss": total,
        "photometric_loss": photometric,
        "train_images_per_s": images / seconds,
        "train_seconds": seconds,
    }


def is_neuron(module: nn.Module) -> bool:
    from spikingjelly.activation_based.neuron import BaseNode

    return isinstance(module, BaseNode)


@contextmanager
def firing_monitor(net: nn.Module) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Records each spiking neuron's mean output (spike rate, or I-LIF count per step) per call,
    as 0-d tensors on the net's device (no host sync; see :func:`mean_rates`)."""
    rates: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, module in net.named_modules():
        if is_neuron(module):
            rates[name] = []
            handles.append(
                module.register_forward_hook(
                    lambda m, a, out, key=name: rates[key].append(out.detach().float().mean())
                )
            )
    try:
        yield rates
    finally:
        for h in handles:
            h.remove()


def mean_rates(rates: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """Mean of each layer's recorded rates, read from the device in one transfer."""
    names = [k for k, v in rates.items() if v]
    if not names:
        return {}
    means = torch.stack([torch.stack(rates[k]).mean() for k in names]).tolist()
    return dict(zip(names, means))


@torch.no_grad()
def validate(
    depth_net: nn.Module,
    loader: DataLoader,
    gt_depths: Sequence[np.ndarray],
    device: torch.device,
    settings: LossSettings,
    precision: str = "fp32",
) -> tuple[DepthErrors, float | None, dict[str, float]]:
    """Eigen metrics of the val split, its loss and the mean rate of every neuron layer.

    One depth forward per batch and no pose network: the Eigen metrics need only the scale-0
    disparity. The loss (same forward, all scales) needs the camera motion, so it is computed only
    when the batches carry known poses (``pose=known``); else it is None.
    """
    depth_net.eval()
    preds: list[torch.Tensor] = []
    loss_sum, batches = torch.zeros((), device=device), 0
    known = True
    with firing_monitor(depth_net) as rates:
        for batch in loader:
            frames = to_unit(batch.frames.to(device, non_blocking=True))
            _reset(depth_net)
            with autocast(device, precision):
                disps = depth_net(frames[:, 0])
            scaled, _ = disp_to_depth(disps[0].float(), settings.min_depth, settings.max_depth)
            preds.append(scaled[:, 0])
            known = known and batch.poses is not None
            if known:
                loss = depth_loss(
                    [d.float() for d in disps], frames[:, 0],
                    [frames[:, i] for i in range(1, frames.shape[1])],
                    list(batch.poses.to(device).unbind(1)), batch.K.to(device),
                    smoothness_weight=settings.smoothness, min_depth=settings.min_depth,
                    max_depth=settings.max_depth,
                )
                loss_sum += loss.total
                batches += 1
    _reset(depth_net)
    pred_maps = list(torch.cat(preds).cpu().numpy()) if preds else []  # one transfer
    errors = evaluate_disparities(pred_maps, list(gt_depths)[: len(pred_maps)])
    val_loss = float(loss_sum) / batches if known and batches else None
    return errors, val_loss, mean_rates(rates)


def _stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``torch.stack``, written straight into shared memory inside a DataLoader worker (what the
    default collate does): the batch then reaches the training process without another copy."""
    from torch.utils.data import get_worker_info

    if get_worker_info() is None:
        return torch.stack(list(tensors))
    first = tensors[0]
    storage = first._typed_storage()._new_shared(len(tensors) * first.numel(), device=first.device)
    out = first.new(storage).resize_(len(tensors), *first.shape)
    return torch.stack(list(tensors), out=out)


def collate(samples: Sequence[DepthSample] | DepthSample) -> DepthSample:
    """Stacks samples (explicit so the batch keeps its NamedTuple type); a batch that the
    dataset built whole (``KittiRawDataset.__getitems__``) passes through."""
    if isinstance(samples, DepthSample):
        return samples
    poses = [s.poses for s in samples]
    return DepthSample(
        _stack([s.frames for s in samples]),
        _stack([s.K for s in samples]),
        torch.tensor([int(s.idx) for s in samples]),
        None if any(p is None for p in poses) else _stack(poses),  # type: ignore[arg-type]
    )
