"""Eigen evaluation on hand-computed cases (monodepth2 protocol, docs/depth.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from snnsearch.depth.eval import (
    compute_errors,
    disp_to_depth,
    eval_mask,
    evaluate_disparities,
    evaluate_pair,
    resize_disparity,
)


def test_compute_errors_hand_values() -> None:
    e = compute_errors(np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 2.0]))
    assert e.abs_rel == pytest.approx((1 + 0 + 0.5) / 3)
    assert e.sq_rel == pytest.approx((1 + 0 + 1) / 3)
    assert e.rmse == pytest.approx(math.sqrt(5 / 3))
    assert e.rmse_log == pytest.approx(math.log(2) * math.sqrt(2 / 3))
    assert (e.a1, e.a2, e.a3) == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_thresholds_hand_values() -> None:
    e = compute_errors(np.ones(3), np.array([1.2, 1.5, 1.9]))
    # 1.25, 1.5625, 1.953125 are the three thresholds
    assert (e.a1, e.a2, e.a3) == pytest.approx((1 / 3, 2 / 3, 1.0))


def test_compute_errors_rejects_empty() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        compute_errors(np.array([]), np.array([]))


def test_disp_to_depth_range() -> None:
    scaled, depth = disp_to_depth(torch.tensor([0.0, 0.5, 1.0]), 0.1, 100.0)
    assert depth[0].item() == pytest.approx(100.0)
    assert depth[2].item() == pytest.approx(0.1)
    assert scaled[1].item() == pytest.approx(0.01 + (10 - 0.01) * 0.5)


def test_resize_is_half_pixel_bilinear() -> None:
    out = resize_disparity(np.array([[0.0, 1.0], [2.0, 3.0]]), 4, 4)
    assert out[0].tolist() == pytest.approx([0.0, 0.25, 0.75, 1.0])
    assert out[:, 0].tolist() == pytest.approx([0.0, 0.5, 1.5, 2.0])


def test_median_scaling_removes_global_scale() -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(5, 60, size=(40, 120)).astype(np.float32)
    e = evaluate_pair(1.0 / (3.0 * gt), gt)  # prediction 3× too far everywhere
    assert e.abs_rel == pytest.approx(0.0, abs=1e-6)
    assert e.a1 == 1.0


def test_garg_crop_and_clamp() -> None:
    gt = np.full((100, 100), 50.0, dtype=np.float32)
    depth = np.full((100, 100), 1000.0)  # wrong everywhere outside the crop …
    depth[40:99, 3:96] = 100.0  # … and clamped to 80 inside it
    e = evaluate_pair(1.0 / depth, gt, median_scaling=False)
    assert e.abs_rel == pytest.approx(30 / 50)
    mask = eval_mask(gt)
    assert mask.sum() == (99 - 40) * (96 - 3)
    assert not eval_mask(np.where(gt > 0, 85.0, 0.0)).any()  # beyond 80 m is not scored


def test_mean_over_images_not_pixels() -> None:
    gt_a = np.zeros((100, 100), dtype=np.float32)
    gt_a[60, 50] = 10.0  # one valid pixel
    gt_b = np.full((100, 100), 10.0, dtype=np.float32)
    preds = [np.full((10, 10), 1 / 20.0), np.full((10, 10), 1 / 10.0)]
    e = evaluate_disparities(preds, [gt_a, gt_b], median_scaling=False)
    assert e.abs_rel == pytest.approx((1.0 + 0.0) / 2)


def test_no_valid_pixel_is_an_error() -> None:
    with pytest.raises(ValueError, match="no valid pixel"):
        evaluate_pair(np.ones((4, 4)), np.zeros((20, 20), dtype=np.float32))
