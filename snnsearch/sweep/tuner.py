"""The one place that assembles Ray Tune objects: Tuner, TuneConfig, RunConfig, searcher,
scheduler, stopper and console reporter (after syne-tune's ``Tuner`` taking its parts), and the
connection to Ray. ``snnsearch.sweep.run`` drives a sweep's life with them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from snnsearch.search.schedulers import SchedulerSettings, build_scheduler
from snnsearch.search.searchers import build_searcher, enqueue_cheap_first
from snnsearch.spaces.space import SearchSpace
from snnsearch.sweep.preflight import TOKEN_HINT, check_listening
from snnsearch.sweep.settings import SweepSettings, trial_fixed
from snnsearch.sweep.warm_start import WarmStart, add_to_study

if TYPE_CHECKING:
    from ray import tune


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
    enqueue_cheap_first(searcher, space.params, settings.cheap_first)
    scheduler = build_scheduler(settings.scheduler, scheduler_settings(settings))
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
        # Before the state signer (sweep/state_hmac.py), so its file is signed with the snapshot.
        callbacks=[SchedulerStateCallback(scheduler), *_scale_callbacks(settings), *callbacks],
        failure_config=tune.FailureConfig(max_failures=settings.max_failures),
        checkpoint_config=_checkpoint_config(),
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


def _scale_callbacks(settings: SweepSettings) -> list[tune.Callback]:
    """Driver work sized for thousands of trials: old checkpoints trimmed without a forced
    experiment snapshot per checkpoint (``sweep/checkpoint_trim.py``; the latest
    ``--keep-checkpoints`` per trial stay, resume needs only the last, figures are in MLflow;
    and the best by the sweep's metric, the selected epoch ``snnsearch.evaluate`` tests),
    and ``result.json`` as the only per-result file log (``sweep/loggers.py``)."""
    from snnsearch.sweep.checkpoint_trim import CheckpointTrimmer
    from snnsearch.sweep.loggers import result_loggers

    return [CheckpointTrimmer(keep=settings.keep_checkpoints, metric=settings.metric,
                              mode=settings.mode), *result_loggers()]


def _checkpoint_config() -> tune.CheckpointConfig:
    """No ``num_to_keep``: with it Ray forces a full experiment snapshot (all trials, the
    pickled study) every time a trial checkpoints ``num_to_keep`` times, i.e. on every result
    with 1; :class:`~snnsearch.sweep.checkpoint_trim.CheckpointTrimmer` deletes instead. The
    snapshot period stays Ray's ``auto`` (``TUNE_GLOBAL_CHECKPOINT_S``: at least 10 s, at most
    5% of the driver's time), which bounds the snapshots' share however many trials there are."""
    from ray import tune

    return tune.CheckpointConfig(num_to_keep=None)


def scheduler_settings(settings: SweepSettings) -> SchedulerSettings:
    """What the scheduler factory gets: rungs in epochs (``--grace`` .. ``--max-epochs``), or
    with ``--time-attr cost`` in the trial's cumulative seconds (``time_total_s``, from
    ``--grace-seconds`` to ``--max-seconds``). The searcher keeps ``max_t = max_epochs``."""
    from snnsearch.search.budget import TIME_ATTRS

    cost = settings.time_attr == "cost"
    return SchedulerSettings(
        metric=settings.metric, mode=settings.mode,
        max_t=settings.max_s if cost else settings.max_epochs,  # type: ignore[arg-type]
        grace_period=settings.grace_s if cost else settings.grace,  # type: ignore[arg-type]
        reduction_factor=settings.reduction_factor, time_attr=TIME_ATTRS[settings.time_attr],
        objectives=settings.objectives, seed=settings.seed,
        options=_scheduler_options(settings),
    )


def _scheduler_options(settings: SweepSettings) -> dict[str, Any]:
    """The space's ``scheduler_options`` plus ``--moasha-tiebreak`` for MO-ASHA."""
    options = dict(settings.scheduler_options)
    if settings.scheduler == "moasha":
        options.setdefault("tiebreak", settings.moasha_tiebreak)
    return options


def _stopper(settings: SweepSettings) -> tune.Stopper | None:
    """The compute budget (``--budget-seconds``) and the silent/saturated-network stopper
    (``settings.silence``), combined through ``ray.tune.stopper.CombinedStopper``; None when
    neither is on.

    The budget comes first: CombinedStopper stops asking once one stopper says stop, and the
    budget must count every result (it never stops a single trial itself). Ray keeps the
    stopper in its experiment snapshot, so ``--resume`` continues with the seconds spent
    (``search/budget.py``).
    """
    parts: list[tune.Stopper] = []
    if settings.budget_s is not None:
        from snnsearch.search.budget import ComputeBudget

        parts.append(ComputeBudget(budget_s=settings.budget_s))
    if settings.silence:
        from snnsearch.search.silence import SilenceStopper

        parts.append(SilenceStopper(check_from=settings.silence_from,
                                    **dict(settings.silence_options)))
    if len(parts) < 2:
        return parts[0] if parts else None
    from ray.tune.stopper import CombinedStopper

    return CombinedStopper(*parts)


def _console_reporter(settings: SweepSettings, space: SearchSpace) -> tune.ProgressReporter:
    """A compact status table every 30 s (objective, epochs and sampled parameters).

    Ray's newer console output prints a box per trial start/finish, which floods the console on
    a 100-trial sweep; the table reporter is used instead (see ``table_console``).
    """
    from ray import tune

    return tune.CLIReporter(
        metric_columns={settings.metric: settings.metric, "training_iteration": "epochs"},
        # No parameter_columns: Ray then shows each trial's sampled parameters; a fixed list
        # would crash its best-trial line on conditional parameters a trial did not sample.
        max_report_frequency=30,
        max_progress_rows=20,
        # metric/mode come from TuneConfig; Ray refuses a reporter that has its own.
        # Not with --budget-seconds: Ray 2.60 sorts finished trials by the metric and raises
        # TypeError on one the budget stopped before its first result (None vs float).
        sort_by_metric=settings.budget_s is None,
    )


@contextlib.contextmanager
def table_console() -> Iterator[None]:
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
    settings: SweepSettings, trainable: Callable[[dict[str, Any]], None],
    param_space: dict[str, Any] | None = None, resume_errored: bool = False,
) -> tune.Tuner:
    """``Tuner.restore`` of an interrupted sweep: finished trials stay finished, unfinished ones
    continue from their last checkpoint, errored ones stay errored. Searcher, scheduler and
    callbacks (with the parent run id) come back from the sweep directory. ``param_space``: the
    fixed values (``trial_fixed``), which Ray does not keep in ``tuner.pkl``: without them the
    trials sampled after a resume ran on the trainable's defaults. ``resume_errored``: errored
    trials continue from their checkpoints too (after a full disk failed them).

    The signatures are checked here, immediately before Ray unpickles ``tuner.pkl`` and the
    experiment state, whatever path led here (the driver's earlier check gives the fast
    one-line refusal before Ray starts; this one leaves no gap of MLflow and Ray start-up).
    """
    from ray import tune

    from snnsearch.sweep import state_hmac

    state_hmac.verify(settings.sweep_dir, name=settings.name)
    return tune.Tuner.restore(
        settings.sweep_dir, trainable=_with_resources(trainable, settings),
        param_space=param_space,
        resume_unfinished=True, resume_errored=resume_errored, restart_errored=False,
    )


def _with_resources(trainable: Callable[[dict[str, Any]], None], settings: SweepSettings) -> Any:
    from ray import tune

    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    return tune.with_resources(trainable, resources)


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
            name=REPEATS_DIR, storage_path=settings.sweep_dir,
            callbacks=[*_scale_callbacks(dataclasses.replace(settings, keep_checkpoints=1)),
                       *callbacks],
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=_checkpoint_config(),
            progress_reporter=tune.CLIReporter(
                metric_columns={settings.metric: settings.metric, "training_iteration": "epochs"},
                max_report_frequency=30, max_progress_rows=20),
            verbose=1),
    )
