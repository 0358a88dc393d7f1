"""Neuron choice by name → a spikingjelly 2.0 node (or ReLU for the ANN twin).

Every SNN family takes a :class:`NeuronSpec`, so one knob switches IF / LIF / PLIF / I-LIF and the
same network with ``kind="relu"`` is its ANN twin with identical parameter names (that is what makes
ANN→SNN weight transfer a plain ``load_state_dict``). A new neuron is one ``@NEURONS.register``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn
from spikingjelly.activation_based import neuron, surrogate

from snnsearch.registry import Registry

# name → builder of a fresh multi-step module from a NeuronSpec (registered below the spec).
NEURONS: Registry[Callable[[NeuronSpec], nn.Module]] = Registry("neuron")


@dataclass(frozen=True)
class NeuronSpec:
    """Neuron hyperparameters shared by every layer of a network.

    Args:
        kind: a ``NEURONS`` name (if, ilif, lif, plif, relu).
        tau: membrane time constant (LIF, PLIF initial value, I-LIF); spikingjelly asserts tau > 1.
        v_threshold: firing threshold.
        D: I-LIF's maximum integer spike count per step (ignored by other kinds).
        surrogate_alpha: sharpness of the ATan surrogate gradient.
        detach_reset: detach the reset path from the graph (spikingjelly's usual speed/accuracy trade).
    """

    kind: str = "lif"
    tau: float = 2.0
    v_threshold: float = 1.0
    D: int = 4
    surrogate_alpha: float = 2.0
    detach_reset: bool = True

    def __post_init__(self) -> None:
        if self.kind not in NEURONS:
            raise ValueError(
                f"unknown neuron {self.kind!r}; choose one of: {', '.join(NEURONS.names())}"
            )
        if not float(self.tau) > 1.0:
            raise ValueError(f"tau must be a float > 1 (got {self.tau}); e.g. tau=2.0")
        if not self.v_threshold > 0:
            raise ValueError(f"v_threshold must be > 0 (got {self.v_threshold})")
        if int(self.D) < 1:
            raise ValueError(f"D must be an integer >= 1 (got {self.D}); I-LIF uses D in 1..8")
        if not self.surrogate_alpha > 0:
            raise ValueError(f"surrogate_alpha must be > 0 (got {self.surrogate_alpha})")

    @property
    def is_spiking(self) -> bool:
        return self.kind != "relu"

    @property
    def max_output(self) -> int:
        """Largest output of one neuron in one step: D for I-LIF (integer counts 0..D), 1 for
        binary spikes. Firing rates divided by it are comparable across neuron types."""
        return int(self.D) if self.kind == "ilif" else 1

    def build(self) -> nn.Module:
        """A fresh multi-step neuron module (input ``[T, B, ...]``)."""
        return NEURONS.get(self.kind)(self)

    def common(self) -> dict:
        """The keyword arguments every spikingjelly node takes from the spec."""
        return dict(v_threshold=self.v_threshold, detach_reset=self.detach_reset, step_mode="m")

    def atan(self) -> surrogate.ATan:
        return surrogate.ATan(alpha=self.surrogate_alpha)


@NEURONS.register("if")
def _if(spec: NeuronSpec) -> nn.Module:
    return neuron.IFNode(surrogate_function=spec.atan(), **spec.common())


@NEURONS.register("lif")
def _lif(spec: NeuronSpec) -> nn.Module:
    return neuron.LIFNode(tau=float(spec.tau), surrogate_function=spec.atan(), **spec.common())


@NEURONS.register("plif")
def _plif(spec: NeuronSpec) -> nn.Module:
    return neuron.ParametricLIFNode(init_tau=float(spec.tau), surrogate_function=spec.atan(),
                                    **spec.common())


@NEURONS.register("ilif")
def _ilif(spec: NeuronSpec) -> nn.Module:
    return neuron.ILIFNode(tau=float(spec.tau),
                           surrogate_function=surrogate.MultiLevelSpikeCount(int(spec.D)),
                           **spec.common())


@NEURONS.register("relu")
def _relu(spec: NeuronSpec) -> nn.Module:
    return nn.ReLU()


NEURON_KINDS = tuple(NEURONS.names())
