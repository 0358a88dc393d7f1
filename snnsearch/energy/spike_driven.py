"""Spike-driven inference for I-LIF networks: integer counts → binary spike trains (T × D steps).

I-LIF (SpikeYOLO) trains with integer spike counts 0..D per step and claims that at inference each
count becomes D binary sub-steps, so every synaptic operation is an accumulate of a weight, never
a multiplication. :func:`to_spike_driven` performs that expansion on a trained network: every
multi-step synaptic layer fed by counts is wrapped as

    SpikeCountToBinary(D) → the same bias-free layer over T·D binary steps → TemporalBinSum(D)

(spikingjelly 2.0's ``layer.SpikeCountToBinary`` / ``layer.TemporalBinSum``: slot s of a count c
is 1 iff s < c, so the D slots sum back to c and the layer's linearity makes the result equal).
Batch norm, pooling and neurons stay where they are and see exactly the integer network's
values; a max-pool between neuron and layer commutes with the expansion (``s < max c`` iff
``s < c`` for some c). Layers fed by real values (the first layer, MS-ResNet's membrane-shortcut
downsampling) are left as MACs.

Limits: layers inside ``SeqToANNContainer`` (time folded into the batch, as in Spikformer) and
spike × spike matmuls are not expanded; :func:`to_spike_driven` names what it wrapped.
"""

from __future__ import annotations

import copy

import torch
from spikingjelly.activation_based import functional, layer
from torch import nn

# spikingjelly's multi-step synaptic layers (they receive [T, B, ...]).
SYNAPTIC = (layer.Conv1d, layer.Conv2d, layer.Conv3d, layer.Linear)


class SpikeDrivenSynapse(nn.Module):
    """A bias-free multi-step synaptic layer run on the binary expansion of its count input.

    Args:
        synapse: the trained layer (``step_mode="m"``, no bias: a bias would be added D times).
        D: I-LIF's maximum count per step.
    """

    def __init__(self, synapse: nn.Module, D: int) -> None:
        super().__init__()
        if getattr(synapse, "bias", None) is not None:
            raise ValueError(f"{type(synapse).__name__} has a bias; spike-driven expansion needs "
                             "bias-free synaptic layers (bias=False), with BN after them")
        self.D = D
        self.expand = layer.SpikeCountToBinary(D, always_convert=True)
        self.synapse = synapse
        self.collapse = layer.TemporalBinSum(D, always_convert=True)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if not _is_count(x_seq, self.D):  # real-valued input: an ordinary MAC layer
            return self.synapse(x_seq)
        return self.collapse(self.synapse(self.expand(x_seq)))


def _is_count(x: torch.Tensor, D: int) -> bool:
    return bool(x.min() >= 0) and bool(x.max() <= D) and bool(torch.equal(x, torch.round(x)))


def to_spike_driven(model: nn.Module, D: int) -> tuple[nn.Module, list[str]]:
    """A copy of ``model`` whose multi-step synaptic layers run spike-driven (see module doc).

    Args:
        model: a trained network with I-LIF neurons of level ``D`` (any state; the copy is reset).
        D: I-LIF's maximum count per step.

    Returns:
        The expanded copy and the names of the wrapped layers.
    """
    if D < 1:
        raise ValueError(f"D must be >= 1 (got {D})")
    net = copy.deepcopy(model)
    functional.reset_net(net)
    wrapped: list[str] = []
    for name, parent in list(net.named_modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, SYNAPTIC) and getattr(child, "step_mode", "s") == "m":
                setattr(parent, child_name, SpikeDrivenSynapse(child, D))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    if hasattr(functional, "invalidate_reset_cache"):  # reset_net caches the module list
        functional.invalidate_reset_cache(net)
    return net, wrapped
