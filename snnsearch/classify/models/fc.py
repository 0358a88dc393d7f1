"""Fully connected SNNs for MNIST (source report: single layer 86.9% at tau=2, multi-layer 94.17%).

Flatten → [Linear(no bias) → neuron] × hidden_layers → Linear(no bias) → output neuron.
The first Linear sees the same image every step, so it runs once and its current is repeated.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer

from snnsearch.classify.models.config import ModelCfg
from snnsearch.classify.models.readout import RateReadout, repeat_over_time
from snnsearch.classify.models.registry import register_model


class FCSNN(nn.Module):
    def __init__(self, cfg: ModelCfg) -> None:
        super().__init__()
        self.T = cfg.T
        in_features = cfg.in_channels * cfg.image_size**2
        widths = [in_features] + [cfg.hidden_width] * cfg.hidden_layers + [cfg.num_classes]
        self.input_layer = nn.Linear(widths[0], widths[1], bias=False)
        hidden: list[nn.Module] = []
        for w_in, w_out in zip(widths[1:-1], widths[2:]):
            hidden += [cfg.neuron.build(), layer.Linear(w_in, w_out, bias=False, step_mode="m")]
        self.hidden = nn.Sequential(*hidden)
        self.readout = RateReadout(cfg.neuron)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        current = self.input_layer(images.flatten(1))
        return self.readout(self.hidden(repeat_over_time(current, self.T)))


@register_model("fc")
def fc(cfg: ModelCfg) -> nn.Module:
    return FCSNN(cfg)


@register_model("fc_ann")
def fc_ann(cfg: ModelCfg) -> nn.Module:
    return FCSNN(cfg.ann_twin())
