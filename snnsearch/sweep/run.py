"""The one place that assembles Ray Tune objects: Tuner, TuneConfig, RunConfig, searcher,
scheduler and callbacks (after syne-tune's ``Tuner`` taking its parts).

``run_sweep`` is the whole life of a sweep: join or start Ray, open (or reopen) the MLflow parent
run, fit (or ``Tuner.restore`` and fit), write ``trials.parquet``, print and log the summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from snnsearch.search.schedulers import SchedulerSettings, build_scheduler
from snnsearch.search.searchers import build_searcher
from snnsearch.spaces import storage as _storage
from snnsearch.spaces.grid import CELL_KEY, strip_cell
from snnsearch.spaces.space import SearchSpace
from snnsearch.sweep import state_hmac
from snnsearch.sweep.interrupts import (
    INTERRUPTED,
    StopForwarder,
    SweepInterrupted,
    close_children,
    resume_command,
    stop_on_signals,
    unfinished,
)
from snnsearch.sweep.lock import SweepLock
from snnsearch.sweep.preflight import (
    TOKEN_HINT,
    check_cluster_fits,
    check_listening,
    check_trial_inputs,
    preflight,
)
from snnsearch.sweep.settings import SweepSettings, trial_fixed
from snnsearch.sweep.warm_start import WarmStart, add_to_study, load_warm_start
from snnsearch.tracking import mlflow_logging as M
from snnsearch.tracking.summary import STOPPED, format_summary, summarize

if TYPE_CHECKING:
    from ray import tune

log = logging.getLogger(__name__)
SETTINGS_FILE = "sweep.json"


@dataclasses.dataclass(frozen=True)
class SweepOutcome:
    """What a finished sweep leaves behind.

    Args:
        summary: ``summarize`` output (best trial, counts, times).
        text: the printed summary.
        table_path: the Parquet trial table.
        parent_run_id: MLflow parent run.
        rows: the trial table rows.
        report_path: ``report.html`` (None if the report failed).
    """

    summary: dict[str, Any]
    text: str
    table_path: str
    parent_run_id: str
    rows: list[dict[str, Any]]
    report_path: str | None = None


def resolve_trainable(spec: str) -> Callable[[dict[str, Any]], None]:
    """A trainable from a ``TRAINABLES`` name or a ``package.module:function`` path."""
    if ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"trainable {spec!r} cannot be imported: {err}") from None
    from snnsearch.sweep.tasks import TRAINABLES

    return TRAINABLES.get(spec)


# Config dataclasses of the registered trainables: space keys are checked against their fields
# before any trial starts (a typo would otherwise fail every trial, one by one, on the cluster).
CONFIG_CLASSES = {
    "classify": "snnsearch.classify.config:ClassifyConfig",
    "depth": "snnsearch.depth.config:DepthConfig",
}


def check_config_keys(space: SearchSpace) -> None:
    """Raises a one-line ValueError if a fixed or searched key is not a trainable config key."""
    target = CONFIG_CLASSES.get(space.trainable)
    if target is None:
        return
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    known = {f.name for f in dataclasses.fields(cls)}
    keys = [*space.fixed, *(k for k in space.searched_keys() if k != CELL_KEY)]
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ValueError(
            f"{space.source}: {unknown[0]}: not a {name} key; valid: {', '.join(sorted(known))}"
        )


def connect_ray() -> None:
    """Joins the cluster named by ``RAY_ADDRESS`` (set inside ``ray job submit``), else starts
    a private local Ray.

    ``address="local"`` matters: a bare ``ray.init()`` would attach to any cluster it finds in
    /tmp/ray, including someone else's.

    Raises:
        ValueError: nothing answers at ``RAY_ADDRESS``, or the cluster refuses this client
            (with token authentication: a missing or wrong Ray token).
    """
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if not address:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        return
    check_listening(address)
    try:
        ray.init(log_to_driver=False)
    except (ConnectionError, ray.exceptions.AuthenticationError) as err:
        raise ValueError(
            f"the Ray cluster at RAY_ADDRESS={address} refused this client ({err}); {TOKEN_HINT}"
        ) from None


def build_tuner(
    settings: SweepSettings,
    space: SearchSpace,
    *,
    trainable: Callable[[dict[str, Any]], None],
    callbacks: Sequence[tune.Callback] = (),
    warm: WarmStart | None = None,
) -> tune.Tuner:
    """A fresh Tuner for ``settings`` over ``space`` (``restore_tuner`` for ``--resume``);
    ``warm``: earlier trials added to the Optuna study (``--warm-start``)."""
    from ray import tune

    fixed = trial_fixed(space, settings)
    # Fixed values (smoke, CLI) replace searched parameters of the same name.
    space = space.with_fixed(fixed)
    # Multi-objective: one Optuna study over every objective; TuneConfig keeps the primary one.
    names = [m for m, _ in settings.objectives]
    searcher = build_searcher(
        space=space.define_by_run(), sampler=settings.sampler, seed=settings.seed,
        metric=names if len(names) > 1 else settings.metric,
        mode=[d for _, d in settings.objectives] if len(names) > 1 else settings.mode,
        options=settings.sampler_options,
        # = fixed["epochs"] (trial_fixed): a trial that ran this many epochs was not stopped.
        max_t=settings.max_epochs,
        constraints=settings.constraints,
    )
    if warm is not None:
        add_to_study(searcher._ot_study, warm)
    scheduler = build_scheduler(
        settings.scheduler,
        SchedulerSettings(
            metric=settings.metric, mode=settings.mode, max_t=settings.max_epochs,
            grace_period=settings.grace, reduction_factor=settings.reduction_factor,
            objectives=settings.objectives, seed=settings.seed,
            options=_scheduler_options(settings),
        ),
    )
    tune_config = tune.TuneConfig(
        metric=settings.metric,
        mode=settings.mode,
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=settings.samples,
        max_concurrent_trials=settings.concurrency,
        # Reusing trial actors skips a fresh worker process (and torch import) per trial.
        reuse_actors=True,
    )
    from snnsearch.search.scheduler_state import SchedulerStateCallback

    run_config = tune.RunConfig(
        name=settings.name,
        storage_path=settings.storage,
        # Ray does not snapshot scheduler state; this callback does (ASHA rungs survive resume).
        # Before the state signer (tuning/state_hmac.py), so its file is signed with the snapshot.
        callbacks=[SchedulerStateCallback(scheduler), *callbacks],
        failure_config=tune.FailureConfig(max_failures=settings.max_failures),
        # The latest per trial by default: resume needs only it, figures are in MLflow.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=settings.keep_checkpoints),
        progress_reporter=_console_reporter(settings, space),
        verbose=1,
        stop=_stopper(settings),
    )
    return tune.Tuner(
        _with_resources(trainable, settings),
        param_space=fixed,
        tune_config=tune_config,
        run_config=run_config,
    )


def _scheduler_options(settings: SweepSettings) -> dict[str, Any]:
    """The space's ``scheduler_options`` plus ``--moasha-tiebreak`` for MO-ASHA."""
    options = dict(settings.scheduler_options)
    if settings.scheduler == "moasha":
        options.setdefault("tiebreak", settings.moasha_tiebreak)
    return options


def _stopper(settings: SweepSettings) -> tune.Stopper | None:
    """The silent/saturated-network stopper when ``settings.silence`` is on (else None).

    Further stoppers would be combined with it through ``ray.tune.stopper.CombinedStopper``.
    """
    if not settings.silence:
        return None
    from snnsearch.search.silence import SilenceStopper

    return SilenceStopper(check_from=settings.silence_from, **dict(settings.silence_options))


def _console_reporter(settings: SweepSettings, space: SearchSpace) -> tune.ProgressReporter:
    """A compact status table every 30 s (objective, epochs and sampled parameters).

    Ray's newer console output prints a box per trial start/finish, which floods the console on
    a 100-trial sweep; the table reporter is used instead (see ``_table_console``).
    """
    from ray import tune

    return tune.CLIReporter(
        metric_columns={settings.metric: settings.metric, "training_iteration": "epochs"},
        # No parameter_columns: Ray then shows each trial's sampled parameters; a fixed list
        # would crash its best-trial line on conditional parameters a trial did not sample.
        max_report_frequency=30,
        max_progress_rows=20,
        # metric/mode come from TuneConfig; Ray refuses a reporter that has its own.
        sort_by_metric=True,
    )


@contextlib.contextmanager
def _table_console() -> Iterator[None]:
    """Selects Ray's table console output for one fit (Ray reads this variable at fit time)."""
    # The second variable silences a per-checkpoint warning that num_to_keep triggers on
    # every short epoch; the snapshots it warns about are what makes --resume work.
    values = {
        "RAY_AIR_NEW_OUTPUT": "0",
        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    }
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def restore_tuner(
    settings: SweepSettings, trainable: Callable[[dict[str, Any]], None]
) -> tune.Tuner:
    """``Tuner.restore`` of an interrupted sweep: finished trials stay finished, unfinished ones
    continue from their last checkpoint, errored ones stay errored. Searcher, scheduler and
    callbacks (with the parent run id) come back from the sweep directory."""
    from ray import tune

    return tune.Tuner.restore(
        settings.sweep_dir, trainable=_with_resources(trainable, settings),
        resume_unfinished=True, resume_errored=False, restart_errored=False,
    )


def _with_resources(trainable: Callable[[dict[str, Any]], None], settings: SweepSettings) -> Any:
    from ray import tune

    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    return tune.with_resources(trainable, resources)


def run_sweep(settings: SweepSettings, space: SearchSpace) -> SweepOutcome:
    """Runs (or resumes) a sweep end to end and returns its outcome.

    Raises:
        ValueError: ``--resume`` without a resumable sweep, or a new sweep over an existing one.
    """
    sweep_dir = settings.sweep_dir
    _check_state_exists(settings)
    trainable = resolve_trainable(space.trainable)
    if settings.smoke:
        space = space.for_smoke()
    if space.grid is not None:
        trainable = strip_cell(trainable)
    check_config_keys(space.with_fixed(trial_fixed(space, settings)))
    check_trial_inputs(space.trainable, trial_fixed(space, settings))
    warm = None
    if settings.warm_start and not settings.resume:  # a resumed study already holds them
        searched = space.with_fixed(trial_fixed(space, settings))
        warm = load_warm_start(settings.warm_start, searched,
                               settings.objectives or ((settings.metric, settings.mode),))
    preflight(settings)
    # One driver per sweep directory; released (and the directory removed if still empty) on
    # every exit, so a refusal below leaves nothing in the storage.
    with SweepLock(sweep_dir=sweep_dir):
        return _run_locked(settings, space, trainable, warm)


def _run_locked(
    settings: SweepSettings, space: SearchSpace, trainable: Callable[[dict[str, Any]], None],
    warm: WarmStart | None = None,
) -> SweepOutcome:
    sweep_dir = settings.sweep_dir
    _check_state_exists(settings)  # again under the lock: another driver may have just finished
    if settings.resume:  # before anything unpickles the stored state
        state_hmac.verify(sweep_dir, name=settings.name)
    connect_ray()
    check_cluster_fits(settings)
    parent = M.SweepParentRun(tracking_uri=settings.mlflow_uri, experiment=settings.experiment)
    parent_id = M.read_parent_id(sweep_dir) if settings.resume else None
    parent_id = parent.start(
        name=settings.name, params=_parent_params(settings, space),
        space=space.to_dict(), existing_run_id=parent_id,
    )
    try:
        if settings.resume:
            tuner = restore_tuner(settings, trainable)
        else:
            M.write_parent_id(sweep_dir, parent_id)
            # The space is stored too: --resume compares it with the one given.
            # Not sorted: the order of the space's parameters is meaningful (``when``).
            _storage.write_text(_storage.join(sweep_dir, SETTINGS_FILE), json.dumps(
                {**settings.to_dict(), "space": space.to_dict()}, indent=2, default=str))
            _save_space(sweep_dir, space.with_fixed(trial_fixed(space, settings)))
            callback = M.NestedMlflowCallback(
                tracking_uri=settings.mlflow_uri, experiment_id=parent.experiment_id,
                parent_run_id=parent_id, sweep=settings.name,
                key_metrics=M.key_metric_names(
                    [settings.metric, *(m for m, _ in settings.objectives)]),
            )
            signer = state_hmac.StateSigner(sweep_dir=sweep_dir, name=settings.name)
            tuner = build_tuner(settings, space, trainable=trainable,
                                callbacks=[callback, signer, StopForwarder()], warm=warm)
            if warm is not None:
                print(f"warm start: {len(warm.trials)} completed trials of {warm.source} "
                      f"({warm.skipped} skipped: outside this space or without a value)")
        state_hmac.sign(sweep_dir, name=settings.name)  # tuner.pkl, written by the Tuner
        with _table_console(), stop_on_signals() as stop:
            results = tuner.fit()
        state_hmac.sign(sweep_dir, name=settings.name)  # the final snapshot
        repeat_rows = [] if stop.signum is not None else _repeats(
            settings, trainable, parent, parent_id, results)
    except BaseException as err:
        parent.fail(parent_id, f"{type(err).__name__}: {err}")
        raise
    searched = space.with_fixed(trial_fixed(space, settings)).searched_keys()
    if stop.signum is not None:
        cut = unfinished(results)
        outcome = _finish(settings, parent, parent_id, results, searched, interrupted=cut)
        raise SweepInterrupted(stop.signum, outcome,
                               resume_command(settings.storage, settings.name))
    outcome = _finish(settings, parent, parent_id, results, searched, repeat_rows)
    if space.report is not None:
        from snnsearch.reporting.compare import compare_rows

        text = compare_rows(outcome.rows, space, settings.sweep_dir, client=parent.client,
                            run_id=parent_id)
        outcome = dataclasses.replace(outcome, text=outcome.text + "\n" + text)
    return outcome


def build_repeat_tuner(settings: SweepSettings, points: Sequence[dict[str, Any]], *,
                       trainable: Callable[[dict[str, Any]], None],
                       callbacks: Sequence[tune.Callback] = ()) -> tune.Tuner:
    """The ``--repeats`` Tuner: exactly ``points`` (full configs), FIFO, no stopper, in
    ``<sweep>/repeats``."""
    from ray import tune

    from snnsearch.sweep.repeats import REPEATS_DIR, FixedConfigs

    return tune.Tuner(
        _with_resources(trainable, settings),
        param_space={},
        tune_config=tune.TuneConfig(
            num_samples=len(points), search_alg=FixedConfigs(points),
            max_concurrent_trials=settings.concurrency, reuse_actors=True),
        run_config=tune.RunConfig(
            name=REPEATS_DIR, storage_path=settings.sweep_dir, callbacks=list(callbacks),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            progress_reporter=tune.CLIReporter(
                metric_columns={settings.metric: settings.metric, "training_iteration": "epochs"},
                max_report_frequency=30, max_progress_rows=20),
            verbose=1),
    )


def _repeats(settings: SweepSettings, trainable: Callable[[dict[str, Any]], None],
             parent: M.SweepParentRun, parent_id: str, results: tune.ResultGrid
             ) -> list[dict[str, Any]]:
    """Runs ``--repeats`` (if asked) under the same parent; returns its rows."""
    from snnsearch.sweep import repeats as R

    if settings.repeats < 1:
        return []

    def fit(points: Sequence[dict[str, Any]]) -> tune.ResultGrid:
        callback = M.NestedMlflowCallback(
            tracking_uri=settings.mlflow_uri, experiment_id=parent.experiment_id,
            parent_run_id=parent_id, sweep=settings.name, role="repeat",
            key_metrics=M.key_metric_names([settings.metric,
                                            *(m for m, _ in settings.objectives)]))
        tuner = build_repeat_tuner(settings, points, trainable=trainable, callbacks=[callback])
        with _table_console():
            return tuner.fit()

    return R.run_repeats(settings, results, fit)


def _check_state_exists(settings: SweepSettings) -> None:
    sweep_dir = settings.sweep_dir
    state_exists = _storage.exists(_storage.join(sweep_dir, "tuner.pkl"))
    if settings.resume and not state_exists:
        raise ValueError(f"--resume: no sweep to resume at {sweep_dir}; check --storage/--name")
    if not settings.resume and state_exists:
        raise ValueError(f"{sweep_dir} already holds a sweep; pass --resume or a new --name")


def _finish(
    settings: SweepSettings, parent: M.SweepParentRun, parent_id: str,
    results: tune.ResultGrid, searched: Sequence[str],
    repeat_rows: Sequence[dict[str, Any]] = (), interrupted: Sequence[str] | None = None,
) -> SweepOutcome:
    """Table, summary, report and parent-run close. ``interrupted``: ids of the trials a signal
    cut (the sweep was interrupted; None: it ran to the end)."""
    from snnsearch.reporting import sweep_end
    from snnsearch.reporting.results import rows_from_results, write_table

    rows = rows_from_results(results, metric=settings.metric, mode=settings.mode)
    for row in rows:  # cut trials read as "stopped early"; a finished or errored one stays so
        if interrupted and row["trial_id"] in interrupted and row["status"] == STOPPED:
            row["status"] = INTERRUPTED
    if interrupted is not None:
        interrupted = [r["trial_id"] for r in rows if r["status"] == INTERRUPTED]
    table_path = write_table(rows, settings.sweep_dir)
    sweep_end.save_history(results, rows, settings.sweep_dir)
    summary = summarize(
        rows, metric=settings.metric, mode=settings.mode,
        gpus_per_trial=settings.gpus_per_trial, searched=searched,
    )
    summary["sweep_dir"] = settings.sweep_dir
    text = format_summary(summary)
    if repeat_rows:
        from snnsearch.sweep.repeats import summary_line

        text += "\n" + summary_line(settings, repeat_rows)
    if len(settings.objectives) >= 2:
        text += "\n" + _pareto(settings, parent, parent_id, rows)
    local = not _storage.is_uri(table_path)
    energy_files = _energy_table(settings, rows) if local else []  # before: the report shows it
    report, line = sweep_end.build_report(settings.sweep_dir, settings.to_dict(), rows)
    text += "\n" + line
    files = [table_path, *energy_files] if local else []
    try:
        parent.finish(parent_id, summary=summary, text=text, files=files,
                      description=sweep_end.description(report, text))
        sweep_end.log_report(report, settings.sweep_dir, client=parent.client, run_id=parent_id)
        if interrupted is not None:
            close_children(settings.mlflow_uri, parent_id, interrupted)
            parent.client.set_tag(parent_id, M.STATUS_TAG, INTERRUPTED)
            parent.client.set_terminated(parent_id, status="KILLED")
    except Exception as err:  # noqa: BLE001 - MLflow down at the end must not cost the results
        log.warning("MLflow unreachable at the end of the sweep (%s: %s); the summary is printed "
                    "and every trial is in %s", type(err).__name__, str(err)[:200], table_path)
    return SweepOutcome(summary, text, table_path, parent_id, rows,
                        report.html_path if report else None)


def _save_space(sweep_dir: str, space: SearchSpace) -> None:
    """``space.yaml`` in the sweep directory: the report reads the parameters' scales from it."""
    import yaml

    from snnsearch.reporting.params import SPACE_FILE

    _storage.write_text(_storage.join(sweep_dir, SPACE_FILE),
                        yaml.safe_dump(space.to_dict(), sort_keys=False))


def _energy_table(settings: SweepSettings, rows: Sequence[dict[str, Any]]) -> list[str]:
    """``energy_sensitivity.csv`` (best trials under every energy model) beside the table; a
    failure is logged, never raised (the table can be rebuilt from ``trials.parquet``)."""
    from snnsearch.energy.sensitivity import write_sensitivity

    try:
        path = write_sensitivity(rows, metric=settings.metric, mode=settings.mode,
                                 sweep_dir=settings.sweep_dir)
    except Exception as err:  # noqa: BLE001 - see docstring
        log.warning("energy sensitivity table failed: %s: %s", type(err).__name__, err)
        return []
    return [] if path is None else [str(path)]


def _pareto(
    settings: SweepSettings, parent: M.SweepParentRun, parent_id: str,
    rows: Sequence[dict[str, Any]],
) -> str:
    """Writes the Pareto report beside ``trials.parquet``, logs it to the parent run and returns
    a summary line. A failure here is logged and reported, never raised: the sweep's trials and
    table are already safe and the report can be rebuilt from the table."""
    from snnsearch.reporting.pareto_report import log_pareto_report, write_pareto_report
    from snnsearch.reporting.results import to_arrow

    try:
        report = write_pareto_report(
            to_arrow(rows).to_pandas(), [list(o) for o in settings.objectives],
            settings.sweep_dir, reference=settings.pareto_ref, constraints=settings.constraints,
        )
        log_pareto_report(report, client=parent.client, run_id=parent_id)
    except Exception as err:  # noqa: BLE001 - see docstring
        log.warning("Pareto report failed: %s: %s", type(err).__name__, err)
        return f"  Pareto report failed: {type(err).__name__}: {str(err)[:200]}"
    objs = ",".join(f"{m}:{d}" for m, d in settings.objectives)
    line = (f"  Pareto front ({objs}): {len(report.front)} of {report.candidates} completed "
            f"trials -> {report.paths['csv']}")
    if report.constraints:
        line += (f"; constraints {', '.join(report.constraints)}: {report.infeasible} "
                 "infeasible trial(s) kept off the front")
    if report.hypervolume is not None:
        line += f"; hypervolume {report.hypervolume:.4g} (reference {report.reference})"
    return line


def _parent_params(settings: SweepSettings, space: SearchSpace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in settings.to_dict().items():
        if key in ("resume",):
            continue
        params[key] = json.dumps(value) if isinstance(value, dict) else value
    fixed = trial_fixed(space, settings)
    params.update({f"fixed.{k}": v for k, v in fixed.items()})
    searched = space.with_fixed(fixed).params
    params.update({f"space.{p.name}": json.dumps(p.to_dict()) for p in searched})
    return params
