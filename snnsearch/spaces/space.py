"""Search spaces as data: YAML → schema validation → Optuna define-by-run function.

A space file has five sections (only ``trainable`` and ``space`` are required)::

    trainable: classify            # TASKS name, or "package.module:function"
    experiment: mnist              # MLflow experiment; defaults to the file's stem
    fixed: {dataset: mnist, epochs: 10}
    space:
      neuron: {categorical: [if, lif, plif, ilif]}
      tau:    {float: [1.5, 8.0], log: true, when: {neuron: [lif, plif, ilif]}}
      D:      {int: [2, 8], when: {neuron: ilif}}
    tune:  {metric: val_acc, mode: max, samples: 32, ...}   # defaults for the CLI flags
    smoke: {fixed: {train_subset: 512}, tune: {samples: 4}} # what --smoke overrides

A parameter is exactly one of ``float: [low, high]``, ``int: [low, high]`` or
``categorical: [choices]`` plus optional ``log``, ``step`` and ``when``. ``when`` names earlier
parameters (or fixed keys) and the values for which this one exists, so conditionals are real
branches in Optuna's define-by-run API and reach the sampler (Ray's dict spaces cannot express
them). Errors are one line: ``<file>: <key>: <problem>``.

Instead of ``space``, a file may give a fixed ``grid`` of named cells run with several seeds and
a ``report`` section with the numbers to compare against (``snnsearch/spaces/grid.py``;
``search_spaces/report/*.yaml``). ``smoke.seeds`` then replaces the grid's seeds under ``--smoke``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from snnsearch.spaces import grid as G
from snnsearch.spaces.params import DefineByRun, ParamSpec, SpaceError

if TYPE_CHECKING:
    pass

TOP_KEYS = frozenset(
    {"trainable", "experiment", "fixed", "space", "tune", "smoke", "grid", "report"}
)
PARAM_KEYS = frozenset({"float", "int", "categorical", "log", "step", "when"})
KINDS = ("float", "int", "categorical")
TUNE_KEYS = frozenset(
    {
        "metric", "mode", "samples", "sampler", "scheduler", "max_epochs", "grace",
        "reduction_factor", "cpus_per_trial", "gpus_per_trial", "concurrency", "seed",
        "max_failures", "scheduler_options", "sampler_options", "objectives",
        "silence", "silence_from", "silence_options", "keep_checkpoints",
        "constraints", "moasha_tiebreak", "budget_s", "time_attr", "grace_s", "max_s", "cheap_first",
    }
)
SMOKE_KEYS = frozenset({"fixed", "tune", "seeds"})
# Lower bounds the trainables would otherwise reject deep inside a trial: spikingjelly asserts
# tau > 1, and T/D/epochs count steps. (bound, inclusive)
LOWER_BOUNDS: dict[str, tuple[float, bool]] = {
    "tau": (1.0, False), "T": (1, True), "D": (1, True), "epochs": (1, True),
}


        # No return value: OptunaSearch takes exactly the suggested values as the trial's config.


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A validated space file.

    Args:
        source: the file it came from (for messages and MLflow).
        trainable: trainable name or ``module:function`` path.
        experiment: MLflow experiment name.
        fixed: constant config keys.
        params: searched parameters.
        tune: defaults for the sweep settings.
        smoke: ``{"fixed": {...}, "tune": {...}}`` overrides applied by ``--smoke`` (grid
            spaces: also ``"seeds": [...]``).
        grid: the fixed grid of a report space (then ``params`` is empty).
        report: how the grid is compared with its report.
    """

    source: str
    trainable: str
    experiment: str
    fixed: Mapping[str, Any]
    params: tuple[ParamSpec, ...]
    tune: Mapping[str, Any]
    smoke: Mapping[str, Any]
    grid: G.Grid | None = None
    report: G.ReportSpec | None = None

    def define_by_run(self) -> DefineByRun | G.GridDefineByRun:
        """The function OptunaSearch calls once per trial."""
        if self.grid is not None:
            return G.GridDefineByRun(self.grid, dict(self.fixed))
        return DefineByRun(self.params, dict(self.fixed))

    def searched_keys(self) -> list[str]:
        """Config keys that vary between trials (searched parameters, or every key of a grid)."""
        return list(self.grid.keys) if self.grid is not None else [p.name for p in self.params]

    def for_smoke(self) -> SearchSpace:
        """A grid space with ``smoke.seeds`` in place of its seeds (other spaces: unchanged)."""
        seeds = self.smoke.get("seeds")
        if self.grid is None or not seeds:
            return self
        return dataclasses.replace(self, grid=self.grid.with_seeds(seeds))

    def to_dict(self) -> dict[str, Any]:
        """Round-trips to the YAML structure (``parse_space(s.to_dict(), ...) == s``)."""
        out: dict[str, Any] = {
            "trainable": self.trainable,
            "experiment": self.experiment,
            "fixed": dict(self.fixed),
            "space": {p.name: p.to_dict() for p in self.params},
            "tune": dict(self.tune),
            "smoke": {k: dict(v) if isinstance(v, Mapping) else list(v)
                      for k, v in self.smoke.items()},
        }
        if self.grid is not None:
            del out["space"]
            out["grid"] = self.grid.to_dict()
        if self.report is not None:
            out["report"] = self.report.to_dict()
        return out

    def with_fixed(self, overrides: Mapping[str, Any]) -> SearchSpace:
        """A copy with extra fixed values (CLI ``--data-dir``, ``--max-epochs``, smoke).

        A fixed value replaces a searched parameter of the same name.
        """
        fixed = {**self.fixed, **overrides}
        params = tuple(p for p in self.params if p.name not in overrides)
        return dataclasses.replace(self, fixed=fixed, params=params)

    def sample(self, seed: int = 0) -> dict[str, Any]:
        """One full trial config drawn with Optuna's RandomSampler (tests, dry runs)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        trial = study.ask()
        self.define_by_run()(trial)
        return {**self.fixed, **trial.params}


def load_space(path: str | Path) -> SearchSpace:
    """Reads and validates a space file.

    Args:
        path: YAML file.

    Raises:
        SpaceError: the file is missing, not YAML, or breaks the schema (one line).
    """
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"{path}: no such search-space file (see search_spaces/*.yaml)")
    from snnsearch.spaces.safe_yaml import YamlLimitError, load_limited

    try:
        data = load_limited(path)
    except yaml.YAMLError as err:
        raise SpaceError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    except YamlLimitError as err:
        raise SpaceError(str(err)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpaceError(f"{path}: unreadable ({type(err).__name__}: {err}); pass a YAML "
                         "text file") from None
    return parse_space(data, source=str(path), default_experiment=path.stem)


def parse_space(
    data: Any, *, source: str = "<space>", default_experiment: str = "snnsearch"
) -> SearchSpace:
    """Validates a loaded space mapping (see the module docstring for the schema).

    Args:
        data: the ``yaml.safe_load`` result.
        source: file name used in error messages.
        default_experiment: MLflow experiment when the file does not name one.
    """

    def fail(key: str, problem: str) -> SpaceError:
        return SpaceError(f"{source}: {key}: {problem}")

    if not isinstance(data, Mapping):
        raise fail("<top>", "expected a mapping with 'trainable' and 'space'")
    _check_keys(data, TOP_KEYS, "", fail)
    if "trainable" not in data:
        raise fail("trainable", "missing (required)")
    if ("space" in data) == ("grid" in data):
        raise fail("space", "give exactly one of 'space' (a search) or 'grid' (fixed cells)")
    if not isinstance(data["trainable"], str) or not data["trainable"]:
        raise fail("trainable", "expected a registry name or 'module:function'")
    fixed = _mapping(data.get("fixed"), "fixed", fail)
    for key, value in fixed.items():
        _check_finite([value], f"fixed.{key}", fail)
        _check_bound(key, [value], f"fixed.{key}", fail)
    grid = G.parse_grid(data["grid"], fixed=fixed, fail=fail) if "grid" in data else None
    if "report" in data and grid is None:
        raise fail("report", "only a grid space can be compared with a report")
    report = G.parse_report(data["report"], grid=grid, fail=fail) if "report" in data else None
    space = _mapping(data.get("space"), "space", fail)
    if not space and grid is None:
        raise fail("space", "empty: give at least one parameter")
    params: list[ParamSpec] = []
    for name, spec in space.items():
        if name in fixed:
            raise fail(f"space.{name}", "also listed under 'fixed'; keep one")
        params.append(_parse_param(str(name), spec, fixed, params, fail))
    tune = _mapping(data.get("tune"), "tune", fail)
    _check_keys(tune, TUNE_KEYS, "tune.", fail)
    if tune.get("mode", "max") not in ("min", "max"):
        raise fail("tune.mode", f"must be 'min' or 'max', got {tune['mode']!r}")
    smoke = _mapping(data.get("smoke"), "smoke", fail)
    _check_keys(smoke, SMOKE_KEYS, "smoke.", fail)
    smoke_parts: dict[str, Any] = {
        k: _mapping(smoke.get(k), f"smoke.{k}", fail) for k in ("fixed", "tune")
    }
    _check_keys(smoke_parts["tune"], TUNE_KEYS, "smoke.tune.", fail)
    if "seeds" in smoke:
        if grid is None:
            raise fail("smoke.seeds", "only a grid space has seeds")
        smoke_parts["seeds"] = list(G.parse_seeds(smoke["seeds"], key="smoke.seeds", fail=fail))
    return SearchSpace(
        source=source,
        trainable=data["trainable"],
        experiment=str(data.get("experiment") or default_experiment),
        fixed=fixed,
        params=tuple(params),
        tune=tune,
        smoke=smoke_parts,
        grid=grid,
        report=report,
    )


def _parse_param(
    name: str, spec: Any, fixed: Mapping[str, Any], earlier: Sequence[ParamSpec], fail: Any
) -> ParamSpec:
    key = f"space.{name}"
    if not isinstance(spec, Mapping):
        raise fail(key, "expected a mapping like {float: [low, high]}")
    _check_keys(spec, PARAM_KEYS, f"{key}.", fail)
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        raise fail(key, f"give exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    values = spec[kind]
    if not isinstance(values, list) or not values:
        raise fail(f"{key}.{kind}", "empty: expected a non-empty list")
    log, step = bool(spec.get("log", False)), spec.get("step")
    if kind == "categorical":
        if log or step is not None:
            raise fail(key, "'log'/'step' apply to float/int only")
        if len(set(map(repr, values))) != len(values):
            raise fail(f"{key}.categorical", "duplicate choices")
        _check_finite(values, f"{key}.categorical", fail)
        _check_bound(name, values, f"{key}.categorical", fail)
        when = _parse_when(spec.get("when"), key, fixed, earlier, fail)
        return ParamSpec(name=name, kind=kind, choices=tuple(values), when=when)
    low, high = _parse_range(values, kind, f"{key}.{kind}", fail)
    if log and low <= 0:
        raise fail(f"{key}.{kind}", f"log scale needs low > 0, got {low}")
    if log and step is not None:
        raise fail(key, "'log' and 'step' cannot be combined (Optuna refuses it)")
    if step is not None and (not isinstance(step, int | float) or isinstance(step, bool)
                             or not math.isfinite(step) or step <= 0):
        raise fail(f"{key}.step", f"must be a positive number, got {step!r}")
    _check_bound(name, [low], f"{key}.{kind}", fail)
    when = _parse_when(spec.get("when"), key, fixed, earlier, fail)
    return ParamSpec(name=name, kind=kind, low=low, high=high, log=log, step=step, when=when)


def _parse_range(values: list, kind: str, key: str, fail: Any) -> tuple[float, float]:
    if len(values) != 2:
        raise fail(key, f"expected [low, high], got {values!r}")
    numeric = (int,) if kind == "int" else (int, float)
    if not all(isinstance(v, numeric) and not isinstance(v, bool) for v in values):
        raise fail(key, f"{kind} bounds must be {kind} numbers, got {values!r}")
    _check_finite(values, key, fail)
    low, high = values
    if low >= high:
        raise fail(key, f"empty range: low {low} must be < high {high}")
    return low, high


def _parse_when(
    when: Any, key: str, fixed: Mapping[str, Any], earlier: Sequence[ParamSpec], fail: Any
) -> dict[str, tuple[Any, ...]]:
    if when is None:
        return {}
    if not isinstance(when, Mapping) or not when:
        raise fail(f"{key}.when", "expected a mapping {earlier_param: value or [values]}")
    known = {p.name: p for p in earlier}
    out: dict[str, tuple[Any, ...]] = {}
    for other, allowed in when.items():
        allowed = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        if other in fixed:
            pass
        elif other not in known:
            raise fail(f"{key}.when.{other}", "must name a fixed key or a parameter above it")
        elif known[other].kind == "categorical":
            bad = [v for v in allowed if v not in known[other].choices]
            if bad:
                raise fail(f"{key}.when.{other}", f"{bad} not among its choices")
        out[str(other)] = allowed
    return out


def _check_finite(values: Sequence[Any], key: str, fail: Any) -> None:
    """NaN/inf are never a sensible bound, choice or fixed value: ``[.nan, 1e-2]`` passed every
    comparison (NaN compares false) and crashed Optuna with OverflowError once Ray was up, and a
    NaN choice can never match a ``when``."""
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(key, f"{value} is not a finite number; give finite values (YAML .nan/.inf "
                            "are never valid here)")


def _check_bound(name: str, values: Sequence[Any], key: str, fail: Any) -> None:
    if name not in LOWER_BOUNDS:
        return
    bound, inclusive = LOWER_BOUNDS[name]
    for value in values:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise fail(key, f"{name} must be a number, got {value!r}")
        if value < bound or (value == bound and not inclusive):
            op = ">=" if inclusive else ">"
            raise fail(key, f"{name} must be {op} {bound:g}, got {value}")


def _mapping(value: Any, key: str, fail: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(key, f"expected a mapping, got {type(value).__name__}")
    return dict(value)


def _check_keys(data: Mapping[str, Any], allowed: frozenset[str], prefix: str, fail: Any) -> None:
    unknown = sorted(set(map(str, data)) - allowed)
    if unknown:
        raise fail(f"{prefix}{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}")


__all__ = ["DefineByRun", "ParamSpec", "SearchSpace", "SpaceError", "load_space", "parse_space"]
