"""Trainables by task family: ``TRAINABLES.get("classify")`` → a Ray Tune function trainable.

Entries import their module on first call, so ``import snnsearch.sweep.tasks`` stays cheap for CLIs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snnsearch.registry import Registry

TRAINABLES: Registry[Callable[[dict[str, Any]], None]] = Registry("trainable")


@TRAINABLES.register("classify")
def classify(config: dict[str, Any]) -> None:
    from snnsearch.classify.trainable import tune_classifier

    tune_classifier(config)


@TRAINABLES.register("depth")
def depth(config: dict[str, Any]) -> None:
    from snnsearch.depth.trainable import tune_depth

    tune_depth(config)


__all__ = ["TRAINABLES"]
