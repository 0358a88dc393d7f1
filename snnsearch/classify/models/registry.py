"""Model registry and factory (after timm's ``_registry.py`` / ``create_model``)."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from snnsearch.classify.models.config import ModelCfg
from snnsearch.registry import Registry

MODELS: Registry[Callable[[ModelCfg], nn.Module]] = Registry("model")
register_model = MODELS.register


def create_model(name: str, cfg: ModelCfg) -> nn.Module:
    """Builds the registered model ``name`` from ``cfg`` (unknown name → one-line ValueError)."""
    return MODELS.get(name)(cfg)


def list_models() -> list[str]:
    return MODELS.names()
