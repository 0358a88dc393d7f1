"""Model families by name: ``create_model(name, ModelCfg)``; ``list_models()`` for CLI/YAML choices."""

from snnsearch.classify.models import csnn, fc, spikformer  # noqa: F401  (registration side effects)
from snnsearch.classify.models.config import ModelCfg
from snnsearch.classify.models.registry import MODELS, create_model, list_models

__all__ = ["MODELS", "ModelCfg", "create_model", "list_models"]
