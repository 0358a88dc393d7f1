"""How each neuron of the exported network reads in spikingjelly, NIR and snnTorch.

spikingjelly (decay_input, hard reset) per step:  v ← v + (x − (v − v_reset)) / τ;
spike if v ≥ θ; then v ← v_reset.  IF: v ← v + x.
NIR (continuous time, Euler step dt):  τ_nir dv/dt = (v_leak − v) + r·I, with τ_nir = τ·dt,
r = 1, v_leak = v_reset = 0 (spikingjelly's exporter); IF: dv/dt = r·I with r = 1/dt.
snnTorch 1.0's importer (dt fixed at 1e-4 s): Leaky with β = 1 − dt/τ_nir = 1 − 1/τ and, since
r·dt/τ_nir = 1/τ ≠ 1, the input left unscaled and the threshold divided by 1/τ instead: its
membrane is τ·v, its threshold τ·θ, reset to zero, spike on mem > threshold (strict; ties
have probability ~0 in float32). The same spikes follow; the card records these numbers.
snnTorch 1.0 maps ``nir.IF`` to ``Leaky(beta=0.9)`` and asserts r = 1, which is not NIR's IF
(r = 1/dt), so IF graphs are checked with spikingjelly's importer only.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from spikingjelly.activation_based import neuron

from snnsearch.export.graph import DT

TEXT = (__doc__ or "\n\n").split("\n\n", 1)[1].strip()  # the mapping, for the card


def _tau(module: nn.Module) -> float | None:
    if isinstance(module, neuron.ParametricLIFNode):
        return float(1.0 / module.w.sigmoid().item())
    if isinstance(module, neuron.LIFNode):
        return float(module.tau)
    return None


def neuron_mapping(net: nn.Module) -> dict[str, Any]:
    """Per neuron layer of the step network: spikingjelly's parameters, NIR's, snnTorch's.

    Returns:
        ``{"layers": [...], "text": <the mapping>, "snntorch_unsupported": reason or None}``.
    """
    layers, unsupported = [], None
    for name, module in net.named_modules():
        if not isinstance(module, neuron.BaseNode):
            continue
        tau = _tau(module)
        entry: dict[str, Any] = {
            "layer": name, "spikingjelly": type(module).__name__,
            "v_threshold": float(module.v_threshold), "v_reset": float(module.v_reset),
        }
        if tau is None:
            entry["nir"] = {"node": "IF", "r": 1.0 / DT}
            unsupported = ("snnTorch 1.0 imports nir.IF as Leaky(beta=0.9) and requires r=1, "
                           "not NIR's IF (r=1/dt); checked with spikingjelly's importer only")
        else:
            decay_input = bool(getattr(module, "decay_input", True))
            entry |= {"tau_steps": tau, "decay_input": decay_input}
            entry["nir"] = {"node": "LIF", "tau_s": tau * DT, "r": 1.0 if decay_input else tau,
                            "v_leak": float(module.v_reset)}
            entry["snntorch"] = {"module": "Leaky", "beta": 1.0 - 1.0 / tau,
                                 "threshold": float(module.v_threshold)
                                 * (tau if decay_input else 1.0),
                                 "reset_mechanism": "zero"}
        layers.append(entry)
    return {"layers": layers, "text": TEXT, "snntorch_unsupported": unsupported}
