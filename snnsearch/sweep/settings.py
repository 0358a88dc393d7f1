"""Resolved sweep settings: built-in defaults < space ``tune:`` < ``smoke.tune`` < CLI flags.

One frozen dataclass carries every knob from the CLI to ``run.py`` and is logged as the MLflow
parent run's params and saved as ``sweep.json`` in the sweep directory (so ``--resume`` can check
that it continues the same sweep).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
from collections.abc import Mapping
from typing import Any

from snnsearch.storage import sweepdir as _storage
from snnsearch.spaces.grid import grid_settings
from snnsearch.spaces.space import SearchSpace

DEFAULTS: dict[str, Any] = {
    "metric": "val_acc",
    "mode": "max",
    "samples": 16,
    "sampler": "tpe",
    "scheduler": "asha",
    "max_epochs": 10,
    "grace": 1,
    "reduction_factor": 3.0,
    "cpus_per_trial": 1.0,
    "gpus_per_trial": 0.0,
    "concurrency": 4,
    "seed": 0,
    "max_failures": 0,
    "scheduler_options": {},
    "sampler_options": {},
    "objectives": (),
    # Silent/saturated-network pruning (docs/moasha.md). None: the task decides (``Task.
    # output_spikes``): on where the prediction is read from output spikes (classification: a
    # silent net is at chance from its first epoch), off where it is not (depth decodes membrane
    # features). Trials whose results carry no spike metrics (ANN baselines) are never stopped.
    "silence": None,
    "silence_from": 1,
    "silence_options": {},
    "pareto_ref": None,
    # Checkpoints kept per trial (the best by the metric; Ray also keeps the latest, which resume
    # needs); a depth checkpoint (nets + Adam)
    # is 0.2-0.4 GB, so each extra one multiplies a sweep's storage (docs/cluster.md).
    "keep_checkpoints": 1,
    # Promotion by hypervolume contribution won the long-curve replay (issue 22).
    "moasha_tiebreak": "hvc",
    "constraints": (),
    "repeats": 0,
    "repeat_top": 3,
    "warm_start": None,
    "log_models": None,  # None: "front" for a `deploy: nir` space, else "none" (docs/export.md)
    "register": None,
    "export_test_images": None,  # None: the whole test set
    # Cost-aware budgets (docs/moasha.md "Cost-aware budgets"): the sweep's compute seconds
    # (None: no budget), and what ASHA/MO-ASHA count progress in: "epoch" or "cost" (the
    # trial's cumulative seconds, with rungs at grace_s * eta**k up to max_s seconds).
    "budget_s": None,
    "time_attr": "epoch",
    "cheap_first": 0,
    "grace_s": None,
    "max_s": None,
}

# Config keys holding file or folder paths (made absolute on the driver, see trial_fixed).
PATH_KEYS = ("data_dir", "train_split", "val_split", "gt_path")
SILENCE_OPTIONS = frozenset({"silent_below", "saturated_above", "max_silent_fraction"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepSettings:
    """Everything a sweep run needs besides the space.

    Args:
        task: CLI task name ("mnist", "fashion", "depth"); names the default sweep.
        space_path: the space file used.
        name: sweep (Ray experiment) name; the directory under ``storage``.
        storage: absolute local path or pyarrow-fs URI where Ray keeps the sweep.
        mlflow_uri: MLflow tracking URI.
        experiment: MLflow experiment name (one per task).
        resume: continue an interrupted sweep with ``Tuner.restore``.
        smoke: the space's ``smoke`` overrides were applied.
        data_dir: dataset root passed to the trainable, if given.
        metric: objective; mode: "min" or "max"; samples: number of trials.
        sampler: SAMPLERS name; scheduler: SCHEDULERS name.
        max_epochs: epochs per trial (trainable ``epochs`` and ASHA ``max_t``).
        grace: ASHA grace period; reduction_factor: ASHA η.
        cpus_per_trial, gpus_per_trial: per-trial resources (fractional GPUs pack trials).
        concurrency: most trials running at once.
        seed: sampler seed (and the trial ``seed`` when the space fixes one).
        max_failures: retries of a crashed trial from its last checkpoint.
        scheduler_options, sampler_options: extra constructor keywords.
        objectives: ``((metric, mode), ...)`` for multi-objective search (``--objectives
            val_acc:max,energy_mj:min``): the Optuna study and MO-ASHA rank all of them and a
            Pareto report is written; ``metric``/``mode`` stay the single objective that
            TuneConfig and the best-trial summary use (it must be one of the objectives).
        moasha_tiebreak: MO-ASHA's order within a front, ``hvc`` (default), ``crowding`` or
            ``epsnet``.
        constraints: hard constraints ``metric<=bound`` / ``metric>=bound`` (``--constraint``):
            infeasible for the sampler, off the Pareto front in the report.
        silence: stop silent/saturated trials (``SilenceStopper``); silence_from: first epoch
            checked; silence_options: ``silent_below``, ``saturated_above``,
            ``max_silent_fraction`` thresholds.
        pareto_ref: hypervolume reference point, one raw value per objective (None: no
            hypervolume).
        keep_checkpoints: checkpoints kept per trial (the best ones by the metric, plus always
            the latest: evaluate tests the best, resume uses the last; ``sweep/tuner.py``).
        repeats: after the search, re-run the top ``repeat_top`` configurations (the Pareto
            front with several objectives) with this many new seeds (0: no confirmation).
        repeat_top: how many configurations ``repeats`` re-runs.
        warm_start: an earlier sweep directory whose completed trials seed the sampler.
        budget_s: the sweep's compute budget in seconds (``--budget-seconds``): it ends once
            the trials' summed ``time_total_s`` reaches it (``search.budget.ComputeBudget``);
            None: no budget.
        time_attr: ``"epoch"`` (ASHA/MO-ASHA rungs at ``grace`` epochs and up) or ``"cost"``
            (rungs in the trial's cumulative seconds, ``time_total_s``, from ``grace_s`` up to
            ``max_s``). The searcher counts completion in epochs either way (``max_epochs``).
        grace_s, max_s: the cost-aware grace period and per-trial cap in seconds (both
            required with ``time_attr="cost"``, refused with ``"epoch"``).
        cheap_first: cost-aware sampling: the first this many trials run at the space's
            smallest T (``--cheap-first``; 0: off).
    """

    task: str
    space_path: str
    name: str
    storage: str
    mlflow_uri: str
    experiment: str
    resume: bool
    smoke: bool
    data_dir: str | None
    metric: str
    mode: str
    samples: int
    sampler: str
    scheduler: str
    max_epochs: int
    grace: int
    reduction_factor: float
    cpus_per_trial: float
    gpus_per_trial: float
    concurrency: int
    seed: int
    max_failures: int
    scheduler_options: Mapping[str, Any]
    sampler_options: Mapping[str, Any]
    objectives: tuple[tuple[str, str], ...] = ()
    silence: bool = True
    silence_from: int = 1
    silence_options: Mapping[str, float] = dataclasses.field(default_factory=dict)
    pareto_ref: tuple[float, ...] | None = None
    keep_checkpoints: int = 1
    moasha_tiebreak: str = "hvc"
    constraints: tuple[str, ...] = ()
    repeats: int = 0
    repeat_top: int = 3
    warm_start: str | None = None
    log_models: str = "none"
    register: str | None = None
    export_test_images: int | None = None
    budget_s: float | None = None
    time_attr: str = "epoch"
    cheap_first: int = 0
    grace_s: float | None = None
    max_s: float | None = None

    @property
    def sweep_dir(self) -> str:
        """``<storage>/<name>``: Ray's experiment directory, also holding our files."""
        return _storage.join(self.storage, self.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (for sweep.json and MLflow params)."""
        out = dataclasses.asdict(self)
        out["scheduler_options"] = dict(self.scheduler_options)
        out["sampler_options"] = dict(self.sampler_options)
        out["objectives"] = [list(o) for o in self.objectives]
        out["silence_options"] = dict(self.silence_options)
        out["pareto_ref"] = list(self.pareto_ref) if self.pareto_ref is not None else None
        out["constraints"] = list(self.constraints)
        return out


def resolve_settings(
    space: SearchSpace, *, task: str, overrides: Mapping[str, Any], smoke: bool = False
) -> SweepSettings:
    """Merges defaults, the space's ``tune``/``smoke.tune`` sections and CLI flags.

    Args:
        space: the loaded space.
        task: CLI task name.
        overrides: CLI values that were given (None means "not given" and is skipped).
        smoke: apply the space's ``smoke`` section.
    """
    _check_given(overrides)
    merged: dict[str, Any] = {**DEFAULTS, **space.tune}
    if smoke:
        merged.update(space.smoke.get("tune", {}))
    grid = (space.for_smoke() if smoke else space).grid
    if grid is not None:
        merged.update(grid_settings(grid, overrides))
    merged.update({k: v for k, v in overrides.items() if v is not None})
    if merged["sampler"] == "grid" and grid is None:
        raise ValueError("--sampler grid needs a grid space (search_spaces/report/*.yaml)")
    if merged["mode"] not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {merged['mode']!r}")
    for key in ("samples", "max_epochs", "grace", "concurrency", "keep_checkpoints",
                "repeat_top"):
        if int(merged[key]) < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {merged[key]}")
    if int(merged["repeats"]) < 0:
        raise ValueError(f"--repeats must be >= 0 (seeds per re-run), got {merged['repeats']}")
    objectives = parse_objectives(merged["objectives"])
    _check_objectives(objectives, str(merged["metric"]), str(merged["mode"]))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    storage = _storage.normalize(merged.get("storage") or "~/ray_results")
    default_name = f"{task}{'-smoke' if smoke else ''}-{stamp}"
    name = _storage.check_name(str(merged.get("name") or default_name))
    return SweepSettings(
        task=task,
        space_path=space.source,
        name=name,
        storage=storage,
        mlflow_uri=normalize_tracking_uri(merged.get("mlflow_uri"), storage),
        experiment=space.experiment,
        resume=bool(merged.get("resume", False)),
        smoke=smoke,
        data_dir=_absolute(merged.get("data_dir")),
        metric=str(merged["metric"]),
        mode=str(merged["mode"]),
        samples=int(merged["samples"]),
        sampler=str(merged["sampler"]),
        scheduler=str(merged["scheduler"]),
        max_epochs=int(merged["max_epochs"]),
        grace=int(merged["grace"]),
        reduction_factor=float(merged["reduction_factor"]),
        cpus_per_trial=float(merged["cpus_per_trial"]),
        gpus_per_trial=float(merged["gpus_per_trial"]),
        concurrency=int(merged["concurrency"]),
        seed=int(merged["seed"]),
        max_failures=int(merged["max_failures"]),
        scheduler_options=dict(merged["scheduler_options"]),
        sampler_options=dict(merged["sampler_options"]),
        objectives=objectives,
        silence=_silence_default(space) if merged["silence"] is None else bool(merged["silence"]),
        silence_from=int(merged["silence_from"]),
        silence_options=_silence_options(merged["silence_options"]),
        pareto_ref=parse_reference(merged["pareto_ref"], objectives),
        keep_checkpoints=int(merged["keep_checkpoints"]),
        moasha_tiebreak=_tiebreak(merged["moasha_tiebreak"]),
        constraints=_constraints(merged["constraints"]),
        repeats=int(merged["repeats"]),
        repeat_top=int(merged["repeat_top"]),
        warm_start=_storage.normalize(merged["warm_start"]) if merged["warm_start"] else None,
        log_models=_log_models(merged["log_models"], space, merged["register"]),
        register=str(merged["register"]) if merged["register"] else None,
        export_test_images=_positive(merged["export_test_images"], "--export-test-images"),
        budget_s=_seconds(merged["budget_s"], "--budget-seconds"),
        time_attr=_time_attr(merged["time_attr"]),
        cheap_first=_cheap_first(merged["cheap_first"]),
        grace_s=_seconds(merged["grace_s"], "--grace-seconds"),
        max_s=_seconds(merged["max_s"], "--max-seconds"),
    )


# Flags whose value is text: given empty (``--name ""``, an unset shell variable) they used to
# fall back to a default silently (a timestamped name, ~/ray_results, $MLFLOW_TRACKING_URI).
_TEXT_FLAGS = ("name", "storage", "mlflow_uri", "data_dir", "warm_start", "objectives",
               "pareto_ref")
# Optuna's samplers seed numpy, which takes 0..2**32-1; any other seed failed once Ray was up.
SEED_RANGE = (0, 2**32 - 1)


def _check_given(overrides: Mapping[str, Any]) -> None:
    """CLI values that can never be meant: empty text, a name that reads as a flag, a seed
    numpy refuses."""
    for key in _TEXT_FLAGS:
        value = overrides.get(key)
        if isinstance(value, str) and not value.strip():
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"{flag} is empty ({value!r}); give a value or leave the flag out "
                             "for the default")
    for text in overrides.get("constraints") or ():
        if not str(text).strip():
            raise ValueError("--constraint is empty; give METRIC<=X or METRIC>=X")
    name = overrides.get("name")
    if isinstance(name, str) and name.startswith("-"):
        raise ValueError(f"--name {name!r} starts with '-', so it reads as a flag in every "
                         "later command (--resume, scripts); start it with a letter or digit")
    seed = overrides.get("seed")
    if seed is not None and not SEED_RANGE[0] <= int(seed) <= SEED_RANGE[1]:
        raise ValueError(f"--seed {seed}: must be in {SEED_RANGE[0]}..{SEED_RANGE[1]} (numpy "
                         "seeds the samplers with it)")


def _positive(value: Any, flag: str) -> int | None:
    if value is None:
        return None
    if int(value) < 1:
        raise ValueError(f"{flag} must be >= 1, got {value}")
    return int(value)


def _seconds(value: Any, flag: str) -> float | None:
    """A seconds flag (or its YAML key) as float; None when not given. Its range is checked
    with the other flags (``preflight.check_cost_flags``)."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{flag} {value!r}: expected a number of seconds, e.g. 600") from None


TIME_ATTR_CHOICES = ("epoch", "cost")  # search.budget.TIME_ATTRS (not imported: it loads Ray)


def _cheap_first(value: Any) -> int:
    """``--cheap-first N``: a whole number of trials >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"--cheap-first {value!r}: must be a whole number of trials >= 0 "
                         "(0: off)")
    return value


def _time_attr(value: Any) -> str:
    if value not in TIME_ATTR_CHOICES:
        raise ValueError(f"--time-attr {value!r}: use one of {', '.join(TIME_ATTR_CHOICES)}")
    return str(value)


def _log_models(value: Any, space: SearchSpace, register: Any) -> str:
    """``--log-models``: "front", "none" or a top-k count; default "front" for a space with
    ``fixed: {deploy: nir}`` (or when ``--register`` is given), else "none"."""
    if value is None:
        deploy = space.fixed.get("deploy") == "nir"
        return "front" if deploy or register else "none"
    text = str(value).strip().lower()
    if text in ("front", "none") or (text.isdigit() and int(text) >= 1):
        return text
    raise ValueError(f"--log-models {value!r}: use front, none or a number of top trials (>= 1)")


def _tiebreak(value: Any) -> str:
    from snnsearch.search.pareto import TIEBREAKS

    if value not in TIEBREAKS:
        raise ValueError(f"--moasha-tiebreak {value!r}: use one of {', '.join(TIEBREAKS)}")
    return str(value)


def _constraints(specs: Any) -> tuple[str, ...]:
    """``--constraint`` / ``tune.constraints`` as canonical strings (parsed once here, so a
    malformed one fails before Ray starts)."""
    from snnsearch.search.constraints import parse_constraints

    if isinstance(specs, str):
        specs = [specs]
    return tuple(str(c) for c in parse_constraints(list(specs or ())))


def _absolute(path: str | None) -> str | None:
    """A local path made absolute (trials and ``--resume`` may run in another directory)."""
    if not path or "://" in path:
        return path
    return os.path.abspath(os.path.expanduser(path))


def _check_objectives(objectives: tuple[tuple[str, str], ...], metric: str, mode: str) -> None:
    """TuneConfig's metric/mode must be one of the objectives (MO-ASHA and the searcher refuse
    anything else, but only once Ray has started)."""
    if objectives and (metric, mode) not in objectives:
        raise ValueError(
            f"--objectives {objectives} do not include metric {metric}:{mode}; add it or "
            "change the space's tune.metric/mode"
        )


def _silence_default(space: SearchSpace) -> bool:
    """Silence stopping when neither the space nor ``--silence`` says: the task's declaration
    (``register_task(output_spikes=...)``); on for a ``module:function`` trainable, whose
    results without spike metrics the stopper skips anyway."""
    from snnsearch.sweep.tasks import TASKS

    return TASKS.get(space.trainable).output_spikes if space.trainable in TASKS else True


def _silence_options(options: Mapping[str, Any]) -> dict[str, float]:
    unknown = set(options) - SILENCE_OPTIONS
    if unknown:
        raise ValueError(
            f"unknown silence_options {sorted(unknown)}; allowed: {', '.join(sorted(SILENCE_OPTIONS))}"
        )
    return {k: float(v) for k, v in options.items()}


def parse_reference(spec: Any, objectives: tuple[tuple[str, str], ...]) -> tuple[float, ...] | None:
    """``"0.0,1.0"`` or ``[0.0, 1.0]`` → ``(0.0, 1.0)``: one value per objective, raw units.

    Raises:
        ValueError: not numbers, or a count different from the objectives'.
    """
    if spec is None or spec == "":
        return None
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        ref = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise ValueError(f"--pareto-ref {spec!r}: expected numbers like 0.0,1.0") from None
    if not all(math.isfinite(v) for v in ref):
        # A NaN/inf corner makes every hypervolume NaN/inf: the Pareto report then failed at the
        # end of the sweep and was never written.
        raise ValueError(f"--pareto-ref {spec!r}: every value must be a finite number (the "
                         "hypervolume is measured up to that corner), e.g. 0.0,1.0")
    if len(ref) != len(objectives):
        raise ValueError(
            f"--pareto-ref {spec!r} has {len(ref)} values for {len(objectives)} objectives; "
            "give one per --objectives item"
        )
    return ref


def parse_objectives(spec: Any) -> tuple[tuple[str, str], ...]:
    """``"val_acc:max,energy_mj:min"`` or ``[[val_acc, max], ...]`` → ``((name, mode), ...)``.

    Raises:
        ValueError: an item without ``:min``/``:max``.
    """
    if not spec:
        return ()
    items = [s.strip().split(":") for s in spec.split(",")] if isinstance(spec, str) else spec
    pairs = []
    for item in items:
        if len(item) != 2 or item[1] not in ("min", "max") or not item[0]:
            raise ValueError(f"objectives: expected metric:min|max items, got {item!r}")
        if any(name == item[0] for name, _ in pairs):
            raise ValueError(f"--objectives lists {item[0]} twice; list each metric once "
                             "(e.g. val_acc:max,energy_mj:min)")
        pairs.append((str(item[0]), str(item[1])))
    return tuple(pairs)


def normalize_tracking_uri(uri: str | None, storage: str | None = None) -> str:
    """``--mlflow-uri`` > ``MLFLOW_TRACKING_URI`` > ``sqlite:///mlflow.db``; sqlite made absolute.

    A relative sqlite path is resolved against the sweep storage (``--storage``), not the
    working directory: under ``ray job submit`` that directory is Ray's temporary unpacked
    working-dir package, deleted with the job, and the runs would vanish with it. With a
    remote storage (s3://) there is no local folder to put it in, so it is refused.

    Args:
        uri: the given URI (None: environment, then the default).
        storage: normalised ``--storage`` (None: resolve against the working directory).
    """

    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    _check_scheme(uri)
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        relative = uri[len(prefix):]
        if storage is not None and _storage.is_uri(storage):
            where = ("inside a Ray job" if os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
                     else f"with --storage {storage}")
            raise ValueError(
                f"--mlflow-uri {uri} is a relative sqlite path, which has no safe place "
                f"{where}; pass an absolute sqlite:////path/mlflow.db on shared disk or "
                "http://<mlflow server>")
        base = storage if storage is not None else os.getcwd()
        uri = prefix + os.path.abspath(os.path.join(base, relative))
    if "@" in uri.split("://", 1)[-1].split("/", 1)[0]:
        # The URI is logged (MLflow params, sweep.json, console); credentials must not ride in it.
        raise ValueError(
            "MLflow credentials do not belong in --mlflow-uri (it is logged); set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead"
        )
    if uri.startswith("file:") or "://" not in uri:
        raise ValueError(
            f"MLflow 3.17 refuses file stores ({uri!r}); use sqlite:///mlflow.db or http://host:port"
        )
    return uri


# Tracking-store schemes MLflow 3.17 opens (its SQLAlchemy store takes a "+driver" suffix).
# Anything else failed with a traceback once Ray had started.
TRACKING_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def _check_scheme(uri: str) -> None:
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme in ("file", ""):
        return  # refused below with the file-store message
    if scheme not in TRACKING_SCHEMES:
        raise ValueError(
            f"--mlflow-uri {uri}: MLflow has no tracking store for scheme {scheme!r}; use "
            "sqlite:////abs/path/mlflow.db, http(s)://host:port or a database URI "
            "(postgresql://, mysql://, mssql://)")
    if scheme == "sqlite" and uri.rstrip("/") in ("sqlite:", "sqlite:/", "sqlite://") or (
            scheme == "sqlite" and ":memory:" in uri):
        raise ValueError(f"--mlflow-uri {uri} is an in-memory sqlite store: every run would "
                         "vanish when the driver exits; use sqlite:////abs/path/mlflow.db")


def trial_fixed(space: SearchSpace, settings: SweepSettings) -> dict[str, Any]:
    """Fixed trial config: the space's, the smoke overrides, then epochs/seed/data_dir from CLI."""
    fixed: dict[str, Any] = dict(space.fixed)
    if settings.smoke:
        fixed.update(space.smoke.get("fixed", {}))
    fixed["epochs"] = settings.max_epochs
    if "seed" in fixed:
        fixed["seed"] = settings.seed
    if settings.data_dir is not None:
        fixed["data_dir"] = settings.data_dir
    # Trials run in their own working directory (Ray's trial folder), so a relative path would
    # name a file there, and errors would name that temporary copy instead of the user's file.
    # Split and GT files given relative are under the data root (a space file can say
    # splits/train_files.txt whatever --data-dir a cluster uses); data_dir itself under the CWD.
    for key in PATH_KEYS:
        value = fixed.get(key)
        if isinstance(value, str) and value and value != "auto" and "://" not in value:
            base = fixed.get("data_dir") if key != "data_dir" and fixed.get("data_dir") else ""
            fixed[key] = os.path.abspath(os.path.join(str(base), os.path.expanduser(value)))
    return fixed
