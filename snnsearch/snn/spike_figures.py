"""Source-report Figures 1–2 as PNG: output-layer firing rates for one test image (bar chart) and
the first spiking conv layer's spike maps per timestep (grid: channels × timesteps)."""

from __future__ import annotations

from pathlib import Path

import torch


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: trials run on cluster nodes without a display
    import matplotlib.pyplot as plt

    return plt


def plot_output_rates(rates: torch.Tensor, label: int, path: str | Path) -> Path:
    """Bar chart of the output layer's per-class firing rate ``rates[num_classes]`` for one image."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 2.6), dpi=90)
    colors = ["tab:orange" if i == label else "tab:blue" for i in range(len(rates))]
    ax.bar(range(len(rates)), rates.cpu().numpy(), color=colors)
    ax.set_xlabel("output neuron (class)")
    ax.set_ylabel("firing rate")
    ax.set_title(f"output firing rates (label {label} in orange)", fontsize=9)
    ax.set_xticks(range(len(rates)))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_spike_maps(spikes: torch.Tensor, path: str | Path, max_channels: int = 8) -> Path:
    """Grid of spike maps ``spikes[T, C, H, W]`` for one image: a row per channel, a column per step."""
    plt = _pyplot()
    T, C = spikes.shape[:2]
    rows = min(C, max_channels)
    fig, axes = plt.subplots(rows, T, figsize=(1.1 * T + 0.6, 1.1 * rows), dpi=90, squeeze=False)
    vmax = max(float(spikes.max()), 1.0)
    for c in range(rows):
        for t in range(T):
            ax = axes[c][t]
            ax.imshow(spikes[t, c].cpu().numpy(), cmap="gray", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_title(f"t={t}", fontsize=8)
        axes[c][0].set_ylabel(f"ch {c}", fontsize=8)
    fig.suptitle("first conv layer spikes", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
