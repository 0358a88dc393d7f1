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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from snnsearch import constants as C
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
        output_spikes: whether the task's prediction is read from the spikes of its output
            layer. Then a silent output layer means a useless net and the silence stopper is
            on by default; depth decodes membrane features, so a silent deep stage still
            predicts and stopping it would cut working trials (off by default).
        reports: metric keys every trial of the task reports (None: unknown, e.g. a
            ``module:function`` trainable); ``--constraint``/``--objectives`` on any other key
            are refused before Ray starts, since no trial could ever satisfy them.
        gates: ``{gate key: {value: config keys that value reads}}`` (``spaces.checks.Gates``):
            a key only some neurons (or models) read is refused on a branch of the space where
            none of them can be chosen (``D`` under ``when: {neuron: lif}``).
    """

    trainable: Trainable
    config: str
    check_data: str | None = None
    check_trial: str | None = None
    output_spikes: bool = True
    reports: frozenset[str] | None = None
    gates: Mapping[str, Mapping[str, frozenset[str]]] = dataclasses.field(default_factory=dict)


TASKS: Registry[Task] = Registry("task")


def register_task(name: str, *, config: str, check_data: str | None = None,
                  check_trial: str | None = None, output_spikes: bool = True,
                  reports: Iterable[str] | None = None,
                  gates: Mapping[str, Mapping[str, Iterable[str]]] | None = None,
                  ) -> Callable[[Trainable], Trainable]:
    """Decorator registering a trainable as task ``name`` with its config, checks and
    declarations (see ``Task``)."""

    def decorator(trainable: Trainable) -> Trainable:
        frozen = {g: {v: frozenset(k) for v, k in t.items()} for g, t in (gates or {}).items()}
        TASKS.register(name)(Task(trainable, config, check_data, check_trial, output_spikes,
                                  frozenset(reports) if reports is not None else None, frozen))
        return trainable

    return decorator


def load(path: str) -> Any:
    """The attribute named by ``"module:attribute"``."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


# What every trial reports besides its task's own keys: Ray's progress keys, and the energy and
# firing-rate keys of snnsearch.energy.metrics / the monitors ("group/" prefixes: any key under).
_RAY_KEYS = ("training_iteration", "time_total_s", "time_this_iter_s")
_COMMON_KEYS = (*_RAY_KEYS, C.EPOCH, C.TRAIN_LOSS, C.EPOCH_TIME, C.IMAGES_PER_S, C.ENERGY_MJ,
                C.ENERGY_COMPUTE_MJ, C.ENERGY_MEMORY_MJ, C.ENERGY_ANN_MJ, C.SYNAPTIC_RATE,
                C.ENERGY_MODEL_PREFIX, C.ENERGY_RATIO_PREFIX, C.BREAKEVEN_PREFIX,
                C.FIRING_RATE_PREFIX, C.OUTPUT_RATE, C.OUTPUT_RATE_NORM)


# The NeuronSpec fields each neuron kind reads (snnsearch/snn/neurons.py builders; kept here,
# torch-free, because the preflight runs before torch is imported; tests/sweep_tests/
# test_task_declarations.py holds it to the registry). I-LIF's surrogate is its multi-level
# spike count, so it reads D and not surrogate_alpha; the ReLU twin reads none.
_SPIKING = ("v_threshold", "detach_reset")
NEURON_READS: dict[str, tuple[str, ...]] = {
    "if": (*_SPIKING, "surrogate_alpha"),
    "lif": (*_SPIKING, "surrogate_alpha", "tau"),
    "plif": (*_SPIKING, "surrogate_alpha", "tau"),
    "ilif": (*_SPIKING, "tau", "D"),
    "relu": (),
}
# The ModelShape fields each classification family (and its ANN twin) reads.
_FC, _CSNN = ("hidden_layers", "hidden_width"), ("conv_blocks", "channels", "pool")
_SPIKFORMER = ("embed_dim", "heads", "blocks", "patch_size", "mlp_ratio")
CLASSIFY_MODEL_READS: dict[str, tuple[str, ...]] = {
    "fc": _FC, "fc_ann": _FC, "csnn": _CSNN, "csnn_ann": _CSNN,
    "spikformer": _SPIKFORMER, "transformer_ann": _SPIKFORMER,
}


def reported(key: str, reports: frozenset[str]) -> bool:
    """Whether ``key`` is among ``reports`` (a ``group/`` entry covers every key under it)."""
    return key in reports or any(p.endswith("/") and key.startswith(p) for p in reports)


@register_task("classify", config="snnsearch.classify.config:ClassifyConfig",
               check_data="snnsearch.classify.checks:check_space_data",
               reports=(*_COMMON_KEYS, C.TRAIN_ACC, C.VAL_LOSS, C.VAL_ACC, C.TEST_ACC,
                        C.SELECTED_TEST_ACC, C.SELECTED_EPOCH, C.SILENT_FRACTION),
               gates={"neuron": NEURON_READS, "model": CLASSIFY_MODEL_READS})
def classify(config: dict[str, Any]) -> None:
    from snnsearch.classify.trainable import tune_classifier

    tune_classifier(config)


@register_task("depth", config="snnsearch.depth.config:DepthConfig",
               check_data="snnsearch.depth.checks:check_space_data",
               check_trial="snnsearch.depth.splits:check_config_splits",
               # The decoder reads membrane features, not spikes (docs/depth.md): a silent deep
               # stage still predicts, so silence stopping is off unless asked for.
               output_spikes=False,
               reports=(*_COMMON_KEYS, C.PHOTOMETRIC_LOSS, C.VAL_LOSS, *C.DEPTH_METRICS,
                        C.SILENT_LAYER_FRACTION),
               gates={"neuron": NEURON_READS})
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


def task_gates(name: str) -> Mapping[str, Mapping[str, frozenset[str]]]:
    """The task's gate tables (``Task.gates``); none for a ``module:function`` trainable."""
    return TASKS.get(name).gates if name in TASKS else {}


def task_checks(name: str) -> tuple[Callable[..., Any] | None, Callable[..., Any] | None]:
    """The task's ``check_data`` and ``check_trial`` functions (None where it has none, or for a
    ``module:function`` trainable, which is no registered task)."""
    if name not in TASKS:
        return None, None
    task = TASKS.get(name)
    return (load(task.check_data) if task.check_data else None,
            load(task.check_trial) if task.check_trial else None)


__all__ = ["TASKS", "Task", "check_config_keys", "check_resume_trainable", "register_task",
           "reported", "resolve_trainable", "task_checks", "task_gates"]
