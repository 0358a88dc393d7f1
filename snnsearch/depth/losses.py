"""monodepth2's self-supervised loss, with kornia's SSIM, back-projection/warp and smoothness.

Per scale s (disparity upsampled to the input size): photometric error
``pe = 0.85·(1−SSIM)/2 + 0.15·|a−b|`` between the target and each warped source; per-pixel minimum
over sources (occlusion handling); auto-masking by also offering the *unwarped* sources to the
minimum (pixels that look static to the camera pick those and give no gradient); plus
``1e-3 / 2^s`` times the edge-aware smoothness of the mean-normalised disparity at scale s.
The total is the mean over scales (Godard et al., ICCV 2019, Sec. 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from snnsearch.depth.eval import disp_to_depth
from snnsearch.depth.geometry import warp_source

SSIM_WEIGHT = 0.85


@dataclass(frozen=True)
class DepthLoss:
    """total: what is minimised; photometric: the masked min-reprojection part alone (logged)."""

    total: torch.Tensor
    photometric: torch.Tensor


def photometric_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[B, 1, H, W]`` per-pixel 0.85·SSIM + 0.15·L1 error, averaged over colour channels."""
    from kornia.losses import ssim_loss

    l1 = (pred - target).abs().mean(1, keepdim=True)
    # kornia's ssim_loss already returns (1 − SSIM) / 2, monodepth2's SSIM term.
    ssim = ssim_loss(pred, target, window_size=3, reduction="none").mean(1, keepdim=True)
    return SSIM_WEIGHT * ssim + (1.0 - SSIM_WEIGHT) * l1


def smoothness(disp: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness of the mean-normalised disparity (kornia's inverse-depth smoothness)."""
    from kornia.losses import inverse_depth_smoothness_loss

    mean_disp = disp.mean(dim=(2, 3), keepdim=True)
    return inverse_depth_smoothness_loss(disp / (mean_disp + 1e-7), image)


def min_reprojection(
    target: torch.Tensor,
    sources: Sequence[torch.Tensor],
    warped: Sequence[torch.Tensor],
    automask: bool = True,
) -> torch.Tensor:
    """Mean over pixels of the per-pixel minimum error over (identity and) warped sources."""
    errors = [photometric_error(w, target) for w in warped]
    if automask:
        # A tiny random offset breaks ties in favour of neither candidate (as monodepth2 does).
        errors += [
            photometric_error(s, target) + 1e-5 * torch.randn_like(errors[0]) for s in sources
        ]
    return torch.cat(errors, dim=1).min(dim=1).values.mean()


def depth_loss(
    disps: Sequence[torch.Tensor],
    target: torch.Tensor,
    sources: Sequence[torch.Tensor],
    poses: Sequence[torch.Tensor],
    K: torch.Tensor,
    *,
    smoothness_weight: float = 1e-3,
    min_depth: float = 0.1,
    max_depth: float = 100.0,
    automask: bool = True,
) -> DepthLoss:
    """monodepth2's multi-scale loss.

    Args:
        disps: sigmoid disparities, scale 0 (full resolution) first.
        target: frame 0, ``[B, 3, H, W]``.
        sources: neighbouring frames, each ``[B, 3, H, W]``.
        poses: per source, ``[B, 4, 4]`` mapping target-camera points into that source camera.
        K: ``[B, 4, 4]`` intrinsics at ``H × W``.
        smoothness_weight: 1e-3 in monodepth2.
    """
    if len(sources) != len(poses) or not sources:
        raise ValueError(f"need one pose per source frame (got {len(sources)} and {len(poses)})")
    h, w = target.shape[-2:]
    totals, photometrics = [], []
    for scale, disp in enumerate(disps):
        disp_full = F.interpolate(disp, size=(h, w), mode="bilinear", align_corners=False)
        _, depth = disp_to_depth(disp_full, min_depth, max_depth)
        warped = [warp_source(s, depth, T, K) for s, T in zip(sources, poses)]
        photo = min_reprojection(target, sources, warped, automask)
        image_s = F.interpolate(target, size=disp.shape[-2:], mode="area")
        smooth = smoothness(disp, image_s) * smoothness_weight / (2**scale)
        totals.append(photo + smooth)
        photometrics.append(photo)
    n = len(disps)
    return DepthLoss(total=sum(totals) / n, photometric=sum(photometrics).detach() / n)
