"""Eigen-split depth evaluation as in monodepth2's ``evaluate_depth.py`` (mono, median scaling).

Protocol (monodepth2's evaluate_depth.py; docs/depth.md): disparity → depth with :func:`disp_to_depth` (0.1–100 m); the *disparity*
is resized to the GT size (bilinear, like ``cv2.resize``) and inverted; pixels with
``1e-3 < gt < 80`` inside the Garg crop are kept; the prediction is scaled per image by
``median(gt) / median(pred)``, clamped to ``[1e-3, 80]``; the seven errors are computed per image
and averaged over images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

MIN_EVAL_DEPTH = 1e-3
MAX_EVAL_DEPTH = 80.0
# Garg et al. (ECCV 2016) crop, as fractions of the GT height/width.
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)


@dataclass(frozen=True)
class DepthErrors:
    """The seven Eigen metrics (names match ``snnsearch.constants.DEPTH_METRICS``)."""

    abs_rel: float
    sq_rel: float
    rmse: float
    rmse_log: float
    a1: float
    a2: float
    a3: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def disp_to_depth(
    disp: torch.Tensor, min_depth: float = 0.1, max_depth: float = 100.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps a sigmoid output in [0, 1] to (scaled disparity, depth) bounded by the depth range.

    Why this form: the network predicts a bounded inverse depth, so depth stays inside
    ``[min_depth, max_depth]`` whatever the sigmoid outputs.
    """
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1.0 / scaled_disp


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> DepthErrors:
    """Eigen errors between two 1-D arrays of valid depths (already masked and scaled)."""
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.shape != pred.shape or gt.size == 0:
        raise ValueError(
            f"compute_errors needs two equal non-empty 1-D arrays (got {gt.shape}, {pred.shape})"
        )
    thresh = np.maximum(gt / pred, pred / gt)
    return DepthErrors(
        abs_rel=float(np.mean(np.abs(gt - pred) / gt)),
        sq_rel=float(np.mean((gt - pred) ** 2 / gt)),
        rmse=float(np.sqrt(np.mean((gt - pred) ** 2))),
        rmse_log=float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        a1=float(np.mean(thresh < 1.25)),
        a2=float(np.mean(thresh < 1.25**2)),
        a3=float(np.mean(thresh < 1.25**3)),
    )


def eval_mask(gt_depth: np.ndarray, garg_crop: bool = True) -> np.ndarray:
    """Valid-pixel mask: depth range plus (optionally) the Garg crop."""
    h, w = gt_depth.shape
    mask = (gt_depth > MIN_EVAL_DEPTH) & (gt_depth < MAX_EVAL_DEPTH)
    if garg_crop:
        top, bottom, left, right = (
            np.array([GARG_CROP[0] * h, GARG_CROP[1] * h, GARG_CROP[2] * w, GARG_CROP[3] * w])
            .astype(np.int32)
            .tolist()
        )
        crop = np.zeros_like(mask)
        crop[top:bottom, left:right] = True
        mask &= crop
    return mask


def resize_disparity(disp: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (what ``cv2.resize`` does; no OpenCV dependency)."""
    t = torch.as_tensor(np.asarray(disp, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def evaluate_pair(
    pred_disp: np.ndarray,
    gt_depth: np.ndarray,
    *,
    garg_crop: bool = True,
    median_scaling: bool = True,
) -> DepthErrors:
    """Errors of one scaled disparity map (already through :func:`disp_to_depth`) against GT."""
    gt_h, gt_w = gt_depth.shape
    pred_depth = 1.0 / resize_disparity(pred_disp, gt_h, gt_w)
    mask = eval_mask(gt_depth, garg_crop)
    if not mask.any():
        raise ValueError("ground-truth map has no valid pixel (1e-3 < depth < 80) inside the crop")
    pred = pred_depth[mask].astype(np.float64)
    gt = gt_depth[mask].astype(np.float64)
    if median_scaling:
        pred *= np.median(gt) / np.median(pred)
    pred = np.clip(pred, MIN_EVAL_DEPTH, MAX_EVAL_DEPTH)
    return compute_errors(gt, pred)


def evaluate_disparities(
    pred_disps: Sequence[np.ndarray],
    gt_depths: Sequence[np.ndarray],
    *,
    garg_crop: bool = True,
    median_scaling: bool = True,
) -> DepthErrors:
    """Mean of the per-image errors over a split (monodepth2 averages images, not pixels)."""
    if len(pred_disps) != len(gt_depths) or len(gt_depths) == 0:
        raise ValueError(
            f"need one prediction per GT map (got {len(pred_disps)} and {len(gt_depths)})"
        )
    rows = [
        evaluate_pair(p, g, garg_crop=garg_crop, median_scaling=median_scaling).as_dict()
        for p, g in zip(pred_disps, gt_depths)
    ]
    return DepthErrors(**{k: float(np.mean([r[k] for r in rows])) for k in rows[0]})
