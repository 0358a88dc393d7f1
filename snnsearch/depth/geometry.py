"""View-synthesis geometry for self-supervised depth, built on kornia.

The batch size is always read from the inputs (never stored, unlike monodepth2's
``BackprojectDepth``), so the last, smaller batch of an epoch needs no ``drop_last``.
"""

from __future__ import annotations

import torch


def transformation_from_parameters(
    axisangle: torch.Tensor, translation: torch.Tensor, invert: bool = False
) -> torch.Tensor:
    """``[B, 4, 4]`` rigid transform from the pose network's axis-angle and translation ``[B, 3]``.

    ``invert=False`` gives ``[R | t]``; ``invert=True`` its inverse ``[Rᵀ | −Rᵀt]`` (used for the
    frame before the target, whose pose is predicted for the pair (−1, 0)).
    """
    from kornia.geometry.conversions import axis_angle_to_rotation_matrix

    R = axis_angle_to_rotation_matrix(axisangle.reshape(-1, 3))
    t = translation.reshape(-1, 3, 1)
    if invert:
        R = R.transpose(1, 2)
        t = -R @ t
    T = torch.eye(4, dtype=R.dtype, device=R.device).repeat(R.shape[0], 1, 1)
    T[:, :3, :3] = R
    T[:, :3, 3:] = t
    return T


def warp_source(
    source: torch.Tensor, depth: torch.Tensor, source_T_target: torch.Tensor, K: torch.Tensor
) -> torch.Tensor:
    """Samples ``source`` ``[B, 3, H, W]`` where the target's depth ``[B, 1, H, W]`` projects.

    Args:
        source: the neighbouring frame.
        depth: z-depth of the target frame in metres (network units).
        source_T_target: ``[B, 4, 4]`` mapping target-camera points into the source camera.
        K: ``[B, 4, 4]`` or ``[B, 3, 3]`` pixel intrinsics at this ``H × W``.
    """
    from kornia.geometry.depth import warp_frame_depth

    return warp_frame_depth(source, depth, source_T_target, K[:, :3, :3])
