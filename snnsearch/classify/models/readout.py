"""Shared pieces of the classification SNNs: static-input repetition and the rate readout."""

from __future__ import annotations

import torch
import torch.nn as nn

from snnsearch.snn.neurons import NeuronSpec


def repeat_over_time(x: torch.Tensor, T: int) -> torch.Tensor:
    """``[B, ...]`` → ``[T, B, ...]``: direct encoding, the same real-valued input every step."""
    return x.unsqueeze(0).expand(T, *x.shape).contiguous()


class RateReadout(nn.Module):
    """Output layer activation: spiking neuron → mean firing (÷D for I-LIF so rates stay in [0, 1]);
    for the ANN twin, identity (logits). Exposes the spikes through ``self.neuron`` so monitors see them.
    """

    def __init__(self, spec: NeuronSpec) -> None:
        super().__init__()
        self.spiking = spec.is_spiking
        self.scale = 1.0 / spec.D if spec.kind == "ilif" else 1.0
        self.neuron = spec.build() if self.spiking else nn.Identity()

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        out = self.neuron(x_seq)
        return out.mean(0) * self.scale
