"""Convolutional SNN (spikingjelly's CSNN tutorial shape; source report 99.48% on MNIST at T=4).

[conv3×3 – BN – neuron – pool2] × conv_blocks (pooling on the first two blocks only, so more
blocks deepen the net at 7×7), then Flatten → Linear(C·7·7 → C·4·4) → neuron → Linear(→10) → neuron.
``pool`` picks max (default) or average pooling; only average pooling exports to NIR.
The first conv–BN sees the static image, so it runs once and is repeated over T.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer

from snnsearch.classify.models.config import ModelCfg
from snnsearch.classify.models.readout import RateReadout, repeat_over_time
from snnsearch.classify.models.registry import register_model

POOLED_BLOCKS = 2


class CSNN(nn.Module):
    def __init__(self, cfg: ModelCfg) -> None:
        super().__init__()
        self.T = cfg.T
        c = cfg.channels
        pool = layer.AvgPool2d if cfg.pool == "avg" else layer.MaxPool2d
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        )
        blocks: list[nn.Module] = [cfg.neuron.build(), pool(2, step_mode="m")]
        side = cfg.image_size // 2
        for index in range(1, cfg.conv_blocks):
            blocks += [
                layer.Conv2d(c, c, 3, padding=1, bias=False, step_mode="m"),
                layer.BatchNorm2d(c, step_mode="m"),
                cfg.neuron.build(),
            ]
            if index < POOLED_BLOCKS:
                blocks.append(pool(2, step_mode="m"))
                side //= 2
        hidden = c * 4 * 4
        blocks += [
            layer.Flatten(step_mode="m"),
            layer.Linear(c * side * side, hidden, bias=False, step_mode="m"),
            cfg.neuron.build(),
            layer.Linear(hidden, cfg.num_classes, bias=False, step_mode="m"),
        ]
        self.features = nn.Sequential(*blocks)
        self.readout = RateReadout(cfg.neuron)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x_seq = repeat_over_time(self.stem(images), self.T)
        return self.readout(self.features(x_seq))


@register_model("csnn")
def csnn(cfg: ModelCfg) -> nn.Module:
    return CSNN(cfg)


@register_model("csnn_ann")
def csnn_ann(cfg: ModelCfg) -> nn.Module:
    return CSNN(cfg.ann_twin())
