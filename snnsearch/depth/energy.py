"""Energy of the depth network over a fixed set of validation images.

Spiking energy depends on the firing rates, which vary from image to image, and energy is a
multi-objective target: one image is a noisy estimate. :func:`depth_energy` counts the first
``energy_images`` validation images (64 by default; the same images for every trial of a sweep)
in equal chunks and averages the counts; the trainable prices them under every energy model and
writes the per-layer table (``energy/layers.csv``) with each checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from snnsearch.energy import EnergyReport, estimate_energy


def _chunk(count: int, batch_size: int) -> int:
    """The largest chunk ≤ ``batch_size`` that divides ``count``: equal chunks make the plain mean
    of the chunk reports the mean over images."""
    return max(k for k in range(1, min(count, batch_size) + 1) if count % k == 0)


def depth_energy(
    net: nn.Module,
    images: Sequence[torch.Tensor],
    *,
    timesteps: int,
    spiking: bool,
    batch_size: int = 16,
) -> EnergyReport:
    """Per-image counts of ``net`` averaged over ``images`` (each ``[3, H, W]``).

    Args:
        net: the depth network (the decoder runs on every image too).
        images: the validation images to count.
        timesteps: T of the encoder.
        spiking: False for the ANN baseline (every operation a MAC).
        batch_size: most images per counted forward pass.
    """
    if not images:
        raise ValueError("depth_energy needs at least one image")
    device = next(net.parameters()).device
    step = _chunk(len(images), batch_size)
    reports = [
        estimate_energy(net, torch.stack(list(images[i : i + step])).to(device),
                        timesteps=timesteps, spiking=spiking)
        for i in range(0, len(images), step)
    ]
    return EnergyReport.mean(reports)
