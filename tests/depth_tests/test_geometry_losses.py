"""View-synthesis geometry and the monodepth2 loss (kornia warp/smoothness, box SSIM)."""

from __future__ import annotations

import pytest
import torch

from snnsearch.depth.geometry import transformation_from_parameters, warp_source
from snnsearch.depth.losses import depth_loss, photometric_error, ssim_dissimilarity


def _K(b: int, f: float = 50.0, cx: float = 48.0, cy: float = 16.0) -> torch.Tensor:
    K = torch.eye(4).repeat(b, 1, 1)
    K[:, 0, 0] = K[:, 1, 1] = f
    K[:, 0, 2], K[:, 1, 2] = cx, cy
    return K


def test_transformation_inverse() -> None:
    torch.manual_seed(0)
    aa, t = 0.2 * torch.randn(3, 3), torch.randn(3, 3)
    T, T_inv = transformation_from_parameters(aa, t), transformation_from_parameters(aa, t, True)
    assert torch.allclose(T @ T_inv, torch.eye(4).expand(3, 4, 4), atol=1e-5)
    assert torch.allclose(T[:, :3, 3], t)


def test_warp_shifts_by_fx_tx_over_z() -> None:
    # A fronto-parallel plane at 5 m and a 0.2 m sideways camera move: 50·0.2/5 = 2 pixels.
    b, h, w = 1, 32, 96
    ramp = torch.arange(w, dtype=torch.float32).expand(b, 3, h, w).contiguous()
    T = transformation_from_parameters(torch.zeros(b, 3), torch.tensor([[0.2, 0.0, 0.0]]))
    warped = warp_source(ramp, torch.full((b, 1, h, w), 5.0), T, _K(b))
    assert torch.allclose(warped[..., 4:-4], ramp[..., 6:-2], atol=1e-3)


def test_ssim_hand_value_on_constant_images() -> None:
    a, b = torch.full((1, 1, 5, 5), 0.2), torch.full((1, 1, 5, 5), 0.6)
    c1 = 0.01**2
    expected = (1 - (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)) / 2
    assert torch.allclose(ssim_dissimilarity(a, b), torch.tensor(expected), atol=1e-4)
    assert ssim_dissimilarity(a, a).abs().max() < 1e-6


def test_photometric_error_mixes_ssim_and_l1() -> None:
    a, b = torch.full((1, 3, 6, 6), 0.2), torch.full((1, 3, 6, 6), 0.6)
    pe = photometric_error(a, b)
    assert pe.shape == (1, 1, 6, 6)
    ssim = ssim_dissimilarity(a, b).mean()
    assert torch.allclose(pe, 0.85 * ssim + 0.15 * 0.4, atol=1e-4)


def _scales(b: int, h: int, w: int, value: float = 0.3) -> list[torch.Tensor]:
    return [torch.full((b, 1, h >> s, w >> s), value, requires_grad=True) for s in range(4)]


def test_loss_is_finite_and_reaches_every_scale() -> None:
    torch.manual_seed(0)
    b, h, w = 2, 32, 96
    img = torch.rand(b, 3, h, w)
    disps = _scales(b, h, w)
    T = transformation_from_parameters(torch.zeros(b, 3), torch.tensor([[0.0, 0.0, 0.3]] * b))
    loss = depth_loss(disps, img, [img.roll(1, -1), img.roll(-1, -1)], [T, T.inverse()], _K(b))
    assert torch.isfinite(loss.total) and loss.total > loss.photometric * 0.99
    loss.total.backward()
    assert all(d.grad is not None and torch.isfinite(d.grad).all() for d in disps)


def test_automask_zeroes_a_static_camera() -> None:
    torch.manual_seed(0)
    b, h, w = 2, 32, 96
    img = torch.rand(b, 3, h, w)
    T = transformation_from_parameters(torch.zeros(b, 3), torch.tensor([[0.0, 0.0, 1.0]] * b))
    args = (_scales(b, h, w), img, [img, img], [T, T], _K(b))
    masked = depth_loss(*args, smoothness_weight=0.0)
    unmasked = depth_loss(*args, smoothness_weight=0.0, automask=False)
    assert masked.photometric < 1e-4 < unmasked.photometric


def test_pose_count_must_match_sources() -> None:
    img = torch.rand(1, 3, 32, 96)
    with pytest.raises(ValueError, match="one pose per source"):
        depth_loss(_scales(1, 32, 96), img, [img], [], _K(1))
