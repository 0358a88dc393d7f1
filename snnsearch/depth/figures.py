"""Depth predictions for a few validation images as one PNG (input | predicted disparity | GT),
logged by the sweep's MLflow callback as an artifact of the trial's child run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snnsearch.snn.spike_figures import _pyplot


def plot_depth_predictions(
    images: torch.Tensor, disparities: torch.Tensor, gt_depths: list[np.ndarray], path: str | Path
) -> Path:
    """Args:
        images: ``[N, 3, H, W]`` in [0, 1].
        disparities: ``[N, 1, H, W]`` sigmoid disparities of the finest scale.
        gt_depths: sparse or dense GT depth maps (0 = no point), one per image (may be fewer).
    """
    plt = _pyplot()
    rows = len(images)
    fig, axes = plt.subplots(rows, 3, figsize=(9, 1.6 * rows + 0.4), dpi=90, squeeze=False)
    for r in range(rows):
        axes[r][0].imshow(images[r].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
        axes[r][1].imshow(disparities[r, 0].cpu().numpy(), cmap="magma")
        if r < len(gt_depths):
            gt = np.where(gt_depths[r] > 0, gt_depths[r], np.nan)
            axes[r][2].imshow(gt, cmap="magma_r")
        for c, title in enumerate(("input", "predicted disparity", "GT depth")):
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
            if r == 0:
                axes[r][c].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
