"""Model families by name: ``create_model(name, ModelCfg)``; ``list_models()`` for CLI/YAML choices."""

from snnsearch.models import csnn, fc, spikformer  # noqa: F401  (registration side effects)
from snnsearch.models._registry import MODELS, create_model, list_models
from snnsearch.models.config import ModelCfg

__all__ = ["MODELS", "ModelCfg", "create_model", "list_models"]
