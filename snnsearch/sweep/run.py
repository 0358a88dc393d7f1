"""A sweep's life, end to end: the Tuner comes from ``snnsearch.sweep.tuner`` (the one place that
assembles Ray Tune objects), the callbacks from tracking, the report from reporting.

``run_sweep`` is the whole life of a sweep: join or start Ray, open (or reopen) the MLflow parent
run, fit (or ``Tuner.restore`` and fit), write ``trials.parquet``, print and log the summary.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from snnsearch import cache as user_cache
from snnsearch.storage import diskfull, signing
from snnsearch.storage import sweepdir as _storage
from snnsearch.spaces.grid import strip_cell
from snnsearch.spaces.space import SearchSpace
from snnsearch.sweep import state_hmac
from snnsearch.sweep.interrupts import (
    INTERRUPTED,
    DiskGuard,
    StopForwarder,
    SweepInterrupted,
    close_children,
    resume_command,
    stop_on_signals,
    stop_when_full,
    unfinished,
)
from snnsearch.sweep import recovery
from snnsearch.sweep.lock import SweepLock
from snnsearch.sweep.preflight import (
    check_cluster_fits,
    check_trial_inputs,
    preflight,
)
from snnsearch.sweep.settings import SweepSettings, trial_fixed
from snnsearch.sweep.tasks import check_config_keys, resolve_trainable
from snnsearch.sweep.tuner import (
    build_repeat_tuner,
    build_tuner,
    connect_ray,
    restore_tuner,
    table_console,
)
from snnsearch.sweep.warm_start import WarmStart, load_warm_start
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
    if settings.warm_start and (not settings.resume or recovery.nothing_ran(sweep_dir)):
        # a resumed study already holds them (a resume of a start that never ran starts anew)
        searched = space.with_fixed(trial_fixed(space, settings))
        warm = load_warm_start(settings.warm_start, searched,
                               settings.objectives or ((settings.metric, settings.mode),))
    preflight(settings)
    # One driver per sweep directory; released (and the directory removed if still empty) on
    # every exit, so a refusal below leaves nothing in the storage.
    with SweepLock(sweep_dir=sweep_dir), stop_when_full(sweep_dir):
        return _run_locked(settings, space, trainable, warm)


def _run_locked(
    settings: SweepSettings, space: SearchSpace, trainable: Callable[[dict[str, Any]], None],
    warm: WarmStart | None = None,
) -> SweepOutcome:
    sweep_dir = settings.sweep_dir
    _check_state_exists(settings)  # again under the lock: another driver may have just finished
    # A start killed or failed before any trial reported is started afresh (recovery.py): its
    # state is never unpickled, but its tuner.pkl must still be this driver's.
    fresh = recovery.nothing_ran(sweep_dir)
    resume = settings.resume and not fresh
    if settings.resume:  # before anything unpickles the stored state
        state_hmac.verify(sweep_dir, name=settings.name, files=recovery.start_files(sweep_dir)
                          if fresh else None)
    connect_ray()
    check_cluster_fits(settings)
    parent = M.SweepParentRun(tracking_uri=settings.mlflow_uri, experiment=settings.experiment)
    params = _parent_params(settings, space)
    if resume:
        parent_id = M.read_parent_id(sweep_dir)
    else:
        parent_id = recovery.reusable_parent(
            parent.client, experiment_id=parent.experiment_id, sweep_dir=sweep_dir,
            name=settings.name, storage=settings.storage, params=params)
        recovery.clear_leftovers(sweep_dir)
    parent_id = parent.start(
        name=settings.name, params=params,
        space=space.to_dict(), existing_run_id=parent_id,
    )
    try:
        if resume:
            tuner = restore_tuner(settings, trainable, param_space=trial_fixed(space, settings),
                                  resume_errored=diskfull.errored_by_disk_full(sweep_dir))
        else:
            M.write_parent_id(sweep_dir, parent_id)
            recovery.kill_point("before-sweep-json")
            # The space is stored too: --resume compares it with the one given.
            # Not sorted: the order of the space's parameters is meaningful (``when``).
            # Signed (sweep.json.hmac): --resume trusts its paths, URI and trainable.
            signing.write_settings(sweep_dir, {**settings.to_dict(), "space": space.to_dict()},
                                   name=settings.name)
            _save_space(sweep_dir, stored_space(space, trial_fixed(space, settings)))
            callback = M.NestedMlflowCallback(
                tracking_uri=settings.mlflow_uri, experiment_id=parent.experiment_id,
                parent_run_id=parent_id, sweep=settings.name, sweep_dir=sweep_dir,
                key_metrics=M.key_metric_names(
                    [settings.metric, *(m for m, _ in settings.objectives)]),
            )
            signer = state_hmac.StateSigner(sweep_dir=sweep_dir, name=settings.name)
            tuner = build_tuner(settings, space, trainable=trainable,
                                callbacks=[callback, signer, StopForwarder(),
                                           DiskGuard(sweep_dir=sweep_dir)], warm=warm)
            if warm is not None:
                print(f"warm start: {len(warm.trials)} completed trials of {warm.source} "
                      f"({warm.skipped} skipped: outside this space or without a value)")
        state_hmac.sign(sweep_dir, name=settings.name)  # tuner.pkl, written by the Tuner
        recovery.kill_point("after-tuner")
        # Decoded frames and synthetic scenes: their size, once the sweep really starts.
        print(user_cache.summary_line(), flush=True)
        with table_console(), stop_on_signals() as stop:
            results = tuner.fit()
        state_hmac.sign(sweep_dir, name=settings.name)  # the final snapshot
        repeat_rows = [] if stop.signum is not None else _repeats(
            settings, trainable, parent, parent_id, results)
    except BaseException as err:
        parent.fail(parent_id, f"{type(err).__name__}: {err}")
        if recovery.nothing_ran(sweep_dir):  # a failed start must not block the name
            recovery.clear_leftovers(sweep_dir)
        raise
    searched = space.with_fixed(trial_fixed(space, settings)).searched_keys()
    if stop.signum is not None:
        cut = unfinished(results)
        outcome = _finish(settings, parent, parent_id, results, searched, interrupted=cut)
        raise SweepInterrupted(stop.signum, outcome,
                               resume_command(settings.storage, settings.name, settings.task),
                               error=stop.error)
    outcome = _finish(settings, parent, parent_id, results, searched, repeat_rows)
    if space.report is not None:
        from snnsearch.reporting.compare import compare_rows

        text = compare_rows(outcome.rows, space, settings.sweep_dir, client=parent.client,
                            run_id=parent_id)
        outcome = dataclasses.replace(outcome, text=outcome.text + "\n" + text)
    return outcome


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
            sweep_dir=settings.sweep_dir,
            key_metrics=M.key_metric_names([settings.metric,
                                            *(m for m, _ in settings.objectives)]))
        tuner = build_repeat_tuner(settings, points, trainable=trainable,
                                   callbacks=[callback, state_hmac.TextErrorsOnly()])
        with table_console():
            return tuner.fit()

    return R.run_repeats(settings, results, fit)


def _check_state_exists(settings: SweepSettings) -> None:
    sweep_dir = settings.sweep_dir
    state_exists = _storage.exists(_storage.join(sweep_dir, "tuner.pkl"))
    if settings.resume and not state_exists and not _storage.exists(
            _storage.join(sweep_dir, SETTINGS_FILE)):  # sweep.json alone: a start never ran
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
    recovery.kill_point("before-report")
    summary = summarize(
        rows, metric=settings.metric, mode=settings.mode,
        gpus_per_trial=settings.gpus_per_trial, searched=searched,
    )
    summary["sweep_dir"] = settings.sweep_dir
    text = format_summary(summary)
    mlflow_line = M.writer_summary_line(M.read_writer_report(settings.sweep_dir))
    if mlflow_line:  # what the MLflow writer could not log by the end (server down)
        text += "\n" + mlflow_line
    if repeat_rows:
        from snnsearch.sweep.repeats import summary_line

        text += "\n" + summary_line(settings, repeat_rows)
    if len(settings.objectives) >= 2:
        text += "\n" + _pareto(settings, parent, parent_id, rows)
    local = not _storage.is_uri(table_path)
    energy_files = _energy_table(settings, rows) if local else []  # before: the report shows it
    if settings.log_models != "none" and local:  # before the report: it links the files
        text += "\n" + _export_models(settings, parent_id)
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


def stored_space(space: SearchSpace, fixed: dict[str, Any]) -> SearchSpace:
    """The space ``space.yaml`` keeps: with the run's fixed values (a parameter they fix was not
    searched); a grid as written, because the run's values override its cells per trial
    (``grid.cell_values``) and a cell key also under ``fixed`` is refused by the parser (smoke's
    ``pretrain: none`` against a pretrained cell). The run's values are in sweep.json and MLflow."""
    return space if space.grid is not None else space.with_fixed(fixed)


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


def _export_models(settings: SweepSettings, parent_id: str) -> str:
    """``--log-models``: the front (or top k) exported to NIR beside the table and logged as MLflow
    models in the trials' runs (docs/export.md). Logged, never raised: the sweep is done."""
    try:
        from snnsearch.export.sweep_export import export_sweep, summary_lines
        from snnsearch.export.tracking import log_sweep_models

        top = None if settings.log_models == "front" else int(settings.log_models)
        # snnTorch is a dev dependency: the sweep checks the files with spikingjelly's importer.
        outcome = export_sweep(settings.sweep_dir, front=top is None, top_k=top,
                               data_dir=settings.data_dir, second_framework=False,
                               test_images=settings.export_test_images)
        lines = ["  exported models:", *summary_lines(outcome)]
        if outcome.exported:
            uris = log_sweep_models(settings.sweep_dir, outcome, tracking_uri=settings.mlflow_uri,
                                    register=settings.register, parent_run_id=parent_id)
            lines += [f"  {trial}: MLflow model {uri}" for trial, uri in uris.items()]
        return "\n".join(lines)
    except Exception as err:  # noqa: BLE001 - the trials and the table are already safe
        log.warning("model export failed: %s: %s", type(err).__name__, err)
        return f"  model export failed: {type(err).__name__}: {str(err)[:200]}"


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
