"""Initialising an SNN from other weights: its ANN twin, or any earlier checkpoint.

The ANN twin is the same network with ReLU in place of every neuron (``ModelCfg.ann_twin``), so
its parameter names equal the SNN's and transfer is a checked ``load_state_dict``. Neuron
parameters (PLIF's learnable ``w``) have no ANN counterpart and are the only keys allowed to be
missing; anything else missing, unexpected or misshapen is an error, never a silent random init.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron

from snnsearch.training.checkpoint import load_checkpoint


def neuron_param_names(model: nn.Module) -> set[str]:
    """State-dict keys that belong to spiking nodes (e.g. PLIF's ``w``)."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, neuron.BaseNode):
            names.update(f"{prefix}.{key}" for key in module.state_dict())
    return names


def transfer_weights(source: dict[str, torch.Tensor], target: nn.Module, *, origin: str) -> list[str]:
    """Copies ``source`` tensors into ``target``; returns the keys loaded.

    Raises:
        ValueError: naming the first missing / unexpected / misshapen keys and ``origin``.
    """
    own = target.state_dict()
    allowed_missing = neuron_param_names(target)
    missing = sorted(k for k in own if k not in source and k not in allowed_missing)
    unexpected = sorted(k for k in source if k not in own)
    misshapen = sorted(k for k in source if k in own and source[k].shape != own[k].shape)
    if missing or unexpected or misshapen:
        parts = [f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected),
                                     ("shape mismatch", misshapen)) if keys]
        raise ValueError(f"weights from {origin} do not fit this model ({'; '.join(parts)}); "
                         "use a checkpoint of the same model and shape")
    target.load_state_dict(source, strict=False)
    return sorted(source)


def load_pretrained(path: str, target: nn.Module) -> list[str]:
    """``pretrain=checkpoint:<path>``: loads the ``model`` entry of a snnsearch checkpoint
    (directory or .pt file) or a bare state dict."""
    state = load_checkpoint(path)
    weights = state.get("model", state)
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ValueError(f"checkpoint {path} holds no model state dict")
    return transfer_weights(weights, target, origin=f"checkpoint {path}")
