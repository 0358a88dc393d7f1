"""One training epoch and one validation pass of self-supervised depth (pure functions over the
models, loader and optimiser; the trainable assembles them).
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

from snnsearch.data.kitti import FRAME_IDS, DepthSample
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

    functional.reset_net(net)


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
    pose_net: nn.Module,
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
    else:
        poses = source_poses(pose_net, net_input)
    sources = [frames[:, i] for i in range(1, frames.shape[1])]
    return depth_loss(
        disps,
        frames[:, 0],
        sources,
        poses,
        K,
        smoothness_weight=settings.smoothness,
        min_depth=settings.min_depth,
        max_depth=settings.max_depth,
    )


def train_epoch(
    depth_net: nn.Module,
    pose_net: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    settings: LossSettings,
    augment: nn.Module | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns mean losses, images/s and seconds."""
    depth_net.train()
    pose_net.train()
    totals, photos, images = [], [], 0
    start = time.perf_counter()
    for batch in loader:
        frames, K = batch.frames.to(device, non_blocking=True), batch.K.to(device)
        poses = batch.poses.to(device) if batch.poses is not None else None
        net_input = frames
        if augment is not None:
            net_input, frames, poses = augment(frames, poses)
        loss = compute_loss(depth_net, pose_net, net_input, frames, K, settings, poses)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        optimizer.step()
        totals.append(float(loss.total.detach()))
        photos.append(float(loss.photometric))
        images += frames.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "train_loss": float(np.mean(totals)),
        "photometric_loss": float(np.mean(photos)),
        "train_images_per_s": images / seconds,
        "train_seconds": seconds,
    }


def is_neuron(module: nn.Module) -> bool:
    from spikingjelly.activation_based.neuron import BaseNode

    return isinstance(module, BaseNode)


@contextmanager
def firing_monitor(net: nn.Module) -> Iterator[dict[str, list[float]]]:
    """Records each spiking neuron's mean output (spike rate, or I-LIF count per step) per call."""
    rates: dict[str, list[float]] = {}
    handles = []
    for name, module in net.named_modules():
        if is_neuron(module):
            rates[name] = []
            handles.append(
                module.register_forward_hook(
                    lambda m, a, out, key=name: rates[key].append(
                        float(out.detach().float().mean())
                    )
                )
            )
    try:
        yield rates
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def validate(
    depth_net: nn.Module,
    pose_net: nn.Module,
    loader: DataLoader,
    gt_depths: Sequence[np.ndarray],
    device: torch.device,
    settings: LossSettings,
) -> tuple[DepthErrors, float, dict[str, float]]:
    """Eigen metrics of the val split, its loss and the mean rate of every neuron layer."""
    depth_net.eval()
    pose_net.eval()
    preds: list[np.ndarray] = []
    losses = []
    with firing_monitor(depth_net) as rates:
        for batch in loader:
            frames: torch.Tensor = batch.frames.to(device)
            _reset(depth_net)
            disp = depth_net(frames[:, 0])[0]
            scaled, _ = disp_to_depth(disp, settings.min_depth, settings.max_depth)
            preds += list(scaled[:, 0].float().cpu().numpy())
            losses.append(
                float(
                    compute_loss(
                        depth_net,
                        pose_net,
                        frames,
                        frames,
                        batch.K.to(device),
                        settings,
                        batch.poses.to(device) if batch.poses is not None else None,
                    ).total
                )
            )
    _reset(depth_net)
    errors = evaluate_disparities(preds, list(gt_depths)[: len(preds)])
    return errors, float(np.mean(losses)), {k: float(np.mean(v)) for k, v in rates.items() if v}


def collate(samples: Sequence[DepthSample]) -> DepthSample:
    """Stacks samples (explicit so the batch keeps its NamedTuple type)."""
    poses = [s.poses for s in samples]
    return DepthSample(
        torch.stack([s.frames for s in samples]),
        torch.stack([s.K for s in samples]),
        torch.tensor([int(s.idx) for s in samples]),
        None if any(p is None for p in poses) else torch.stack(poses),  # type: ignore[arg-type]
    )
