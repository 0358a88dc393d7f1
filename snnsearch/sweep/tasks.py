"""The tasks a sweep can run, one registration each: ``TASKS.get("depth")``.

A task is its Ray Tune function trainable (whose name prefixes the trial names), the frozen config
dataclass every trial dict must fit, and the driver-side checks of its data. The config class and
the checks are ``"module:attribute"`` paths imported on use, so ``sweeps/*.py --help`` and the
preflight never import torch. Adding a task is its package (``snnsearch/<task>/``) plus one
``@register_task`` below (docs/architecture.md, "Adding things").
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from snnsearch.registry import Registry
from snnsearch.spaces.grid import CELL_KEY

if TYPE_CHECKING:
    from snnsearch.spaces.space import SearchSpace

Trainable = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Task:
    """What the engine knows of a task.

    Args:
        trainable: the Ray Tune function trainable.
        config: ``"module:Class"`` of the trial config dataclass (space keys are checked against
            its fields before any trial starts: a typo would otherwise fail every trial).
        check_data: ``"module:function"`` called as ``f(fixed, possible)`` by the preflight, where
            ``possible(key)`` lists the values ``key`` can take in a trial (or None); raises a
            one-line ValueError for a missing or broken dataset file.
        check_trial: ``"module:function"`` called as ``f(fixed)``; raises a one-line ValueError
            or returns warnings to log (e.g. train/val splits sharing a drive).
    """

    trainable: Trainable
    config: str
    check_data: str | None = None
    check_trial: str | None = None


TASKS: Registry[Task] = Registry("task")


def register_task(name: str, *, config: str, check_data: str | None = None,
                  check_trial: str | None = None) -> Callable[[Trainable], Trainable]:
    """Decorator registering a trainable as task ``name`` with its config and checks."""

    def decorator(trainable: Trainable) -> Trainable:
        TASKS.register(name)(Task(trainable, config, check_data, check_trial))
        return trainable

    return decorator


def load(path: str) -> Any:
    """The attribute named by ``"module:attribute"``."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@register_task("classify", config="snnsearch.classify.config:ClassifyConfig",
               check_data="snnsearch.classify.checks:check_space_data")
def classify(config: dict[str, Any]) -> None:
    from snnsearch.classify.trainable import tune_classifier

    tune_classifier(config)


@register_task("depth", config="snnsearch.depth.config:DepthConfig",
               check_data="snnsearch.depth.checks:check_space_data",
               check_trial="snnsearch.depth.splits:check_config_splits")
def depth(config: dict[str, Any]) -> None:
    from snnsearch.depth.trainable import tune_depth

    tune_depth(config)


def resolve_trainable(spec: str) -> Trainable:
    """A trainable from a ``TASKS`` name or a ``package.module:function`` path."""
    if ":" in spec:
        try:
            return load(spec)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"trainable {spec!r} cannot be imported: {err}") from None
    return TASKS.get(spec).trainable


def check_resume_trainable(stored: str, given: str | None) -> None:
    """Refuses (one-line ValueError) to import on ``--resume`` a ``module:function`` trainable
    named only by the stored ``sweep.json``: a registered task, a trainable of this package
    (``snnsearch.*``) or the one of the ``--space`` given now is imported; another module is not,
    even from a signed file (a second line of defence behind the signature)."""
    if ":" not in stored or stored in TASKS or stored.startswith("snnsearch.") or stored == given:
        return
    raise ValueError(
        f"--resume: the sweep's trainable {stored!r} is no registered task; pass the space that "
        f"names it with --space to import it")


def check_config_keys(space: SearchSpace) -> None:
    """Raises a one-line ValueError if a fixed or searched key is not a trainable config key."""
    if space.trainable not in TASKS:
        return
    cls = load(TASKS.get(space.trainable).config)
    known = {f.name for f in dataclasses.fields(cls)}
    keys = [*space.fixed, *(k for k in space.searched_keys() if k != CELL_KEY)]
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ValueError(
            f"{space.source}: {unknown[0]}: not a {cls.__name__} key; valid: "
            f"{', '.join(sorted(known))}"
        )


def task_checks(name: str) -> tuple[Callable[..., Any] | None, Callable[..., Any] | None]:
    """The task's ``check_data`` and ``check_trial`` functions (None where it has none, or for a
    ``module:function`` trainable, which is no registered task)."""
    if name not in TASKS:
        return None, None
    task = TASKS.get(name)
    return (load(task.check_data) if task.check_data else None,
            load(task.check_trial) if task.check_trial else None)


__all__ = ["TASKS", "Task", "check_config_keys", "check_resume_trainable", "register_task",
           "resolve_trainable",
           "task_checks"]
