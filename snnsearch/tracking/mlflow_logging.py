"""MLflow logging of a sweep: one parent run per sweep, one nested child run per trial.

Ray's ``MLflowLoggerCallback`` makes every trial a top-level run, so the MLflow UI cannot group
or compare a sweep's trials. Here every MLflow call happens on the driver inside a Tune
``Callback``; children carry the ``mlflow.parentRunId`` tag (how the UI nests runs) and a
``snnsearch.trial_id`` tag. Resume finds the parent through ``mlflow_parent_run_id.txt`` in the
sweep directory and the children through that tag, so a restored sweep adds no duplicate runs.
MLflow failures are logged as warnings and never stop the sweep: losing a metric point is
cheaper than losing a GPU-hour of trials.

What the UI shows first: MLflow 3.17's run page groups metric charts into sections by the prefix
before the last ``/``, sorts the sections by that prefix (ASCII) and puts the un-prefixed
"Model metrics" section last, so a trial's 14-32 per-layer ``firing_rate/*`` charts came before
its accuracy (checked in headless Chromium). The key metrics of a trial (the objectives, test
accuracy, ``energy_mj``, ``epoch_time_s``, ``train_images_per_s``) are therefore also logged under
:data:`KEY_SECTION` (``Key metrics/val_acc``, ...), which sorts before every lower-case prefix; the
flat names stay the contract shared with Ray, Optuna and the Parquet table (search
``metrics.val_acc`` as before). Run statuses are honest: FINISHED for a trial that ran its full
budget, KILLED for one stopped early, silent or saturated (the reason in the
``snnsearch.stop_reason`` tag), FAILED for an errored one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from snnsearch.constants import STOP_REASON
from snnsearch.tracking import summary as S
from snnsearch.tracking.mlflow_client import (
    _MAX_NOTE_LEN,
    _MAX_PARAM_LEN,
    ERROR_TAG,
    KEY_METRICS,
    KEY_SECTION,
    NOTE_TAG,
    PARENT_ID_FILE,
    PARENT_TAG,
    RETRY_AFTER_S,
    ROLE_TAG,
    STATUS_TAG,
    STOP_REASON_TAG,
    SWEEP_TAG,
    TRIAL_TAG,
    _now_ms,
    dump_json,
    ensure_experiment,
    environment_tags,
    key_metric_names,
    log_params,
    make_client,
    mlflow_status,
    numeric_metrics,
    with_key_section,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from ray.tune import Checkpoint
    from ray.tune.experiment import Trial

log = logging.getLogger(__name__)


class SweepParentRun:
    """The parent run of one sweep: created once, reused on resume, closed with the summary.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment: experiment name (one per task).
    """

    def __init__(self, *, tracking_uri: str, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        self.client = make_client(tracking_uri)
        self.experiment_id = ensure_experiment(self.client, experiment, tracking_uri)

    def start(
        self, *, name: str, params: Mapping[str, Any], space: Mapping[str, Any],
        existing_run_id: str | None = None,
    ) -> str:
        """Creates the parent run (or reopens ``existing_run_id``) and returns its id."""
        import yaml

        if existing_run_id:
            self.client.update_run(existing_run_id, status="RUNNING")
            self.client.set_tag(existing_run_id, "snnsearch.resumed", "true")
            return existing_run_id
        tags = {SWEEP_TAG: name, ROLE_TAG: "sweep", **environment_tags()}
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        run_id = run.info.run_id
        log_params(self.client, run_id, params)
        self.client.log_text(run_id, yaml.safe_dump(dict(space), sort_keys=False), "space.yaml")
        return run_id

    def finish(
        self, run_id: str, *, summary: Mapping[str, Any], text: str, files: Iterable[str] = (),
        description: str | None = None,
    ) -> None:
        """Logs the sweep summary (metrics, JSON, text, extra files) and ends the run.

        Args:
            run_id: the parent run.
            summary: ``summarize`` output.
            text: the console summary (``summary.txt``).
            files: local files logged at the artifact root.
            description: Markdown shown as the run's description in the MLflow UI (defaults to
                ``text`` in a code block).
        """
        from mlflow.entities import Metric

        values = {
            "trials": summary["trials"],
            "total_trial_time_s": summary["total_trial_time_s"],
            "gpu_hours": summary["gpu_hours"],
            **{f"n_{k.replace(' ', '_')}": v for k, v in summary["counts"].items()},
        }
        if summary.get("best_value") is not None:
            values[f"best_{summary['metric']}"] = summary["best_value"]
        stamp = _now_ms()
        self.client.log_batch(
            run_id, metrics=[Metric(k, float(v), stamp, 0) for k, v in values.items()]
        )
        if summary.get("best_trial_id"):
            self.client.set_tag(run_id, "snnsearch.best_trial_id", summary["best_trial_id"])
        self.client.log_dict(run_id, dict(summary), "summary.json")
        self.client.log_text(run_id, text, "summary.txt")
        note = description if description is not None else f"```\n{text}\n```"
        self.client.set_tag(run_id, NOTE_TAG, note[:_MAX_NOTE_LEN])
        for path in files:
            self.client.log_artifact(run_id, path)
        self.client.set_terminated(run_id, status="FINISHED")

    def fail(self, run_id: str, reason: str) -> None:
        """Marks the parent run FAILED (driver error or interrupt) with the reason."""
        self.client.set_tag(run_id, ERROR_TAG, reason[:_MAX_PARAM_LEN])
        self.client.set_terminated(run_id, status="FAILED")


class NestedMlflowCallback(Callback):
    """Tune callback writing one nested MLflow child run per trial.

    Picklable (Ray stores callbacks in ``tuner.pkl`` for ``Tuner.restore``): the client and the
    trial → run map are rebuilt lazily, the map from the ``snnsearch.trial_id`` tags.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment_id: experiment holding the parent run.
        parent_run_id: the sweep's parent run.
        sweep: sweep name (tag on every child).
        key_metrics: metrics also logged under ``Key metrics/`` (the sweep's objectives first;
            :func:`key_metric_names`).
        role: the children's ``snnsearch.role`` tag ("trial"; "repeat" for ``--repeats``).
    """

    def __init__(
        self, *, tracking_uri: str, experiment_id: str, parent_run_id: str, sweep: str,
        key_metrics: Iterable[str] = KEY_METRICS, role: str = "trial",
    ) -> None:
        self.key_metrics = tuple(key_metrics)
        self.role = role
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.sweep = sweep
        self._client: MlflowClient | None = None
        self._runs: dict[str, str] | None = None
        self._steps: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        state["_runs"] = None
        state["_steps"] = {}
        return state

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = make_client(self.tracking_uri)
        return self._client

    @property
    def runs(self) -> dict[str, str]:
        """trial_id → child run id, seeded from MLflow so resume reuses existing children.

        Only children of this callback's role: the ``--repeats`` Tuner shares the parent, and
        its callback must neither reuse nor (``_drop_lost``) delete the search's children.
        """
        if self._runs is None:
            found = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
                max_results=10000,
            )
            role = getattr(self, "role", "trial")
            self._runs = {
                r.data.tags[TRIAL_TAG]: r.info.run_id for r in found
                if TRIAL_TAG in r.data.tags and r.data.tags.get(ROLE_TAG, "trial") == role
            }
        return self._runs

    def child_run(self, trial: Trial) -> str:
        """The trial's child run id, created (with params and tags) the first time."""
        run_id = self.runs.get(trial.trial_id)
        if run_id is not None:
            return run_id
        tags = {
            PARENT_TAG: self.parent_run_id, TRIAL_TAG: trial.trial_id, SWEEP_TAG: self.sweep,
            ROLE_TAG: getattr(self, "role", "trial"), STATUS_TAG: "running",
            **environment_tags(),
        }
        run = self.client.create_run(self.experiment_id, run_name=str(trial), tags=tags)
        run_id = run.info.run_id
        self.runs[trial.trial_id] = run_id
        self._steps[trial.trial_id] = 0
        log_params(self.client, run_id, dict(trial.config))
        return run_id

    def logged_step(self, trial_id: str, run_id: str) -> int:
        """Last step already in MLflow for this trial (0 for a new child).

        After a driver crash, Ray resumes a trial from the checkpoint in its last experiment
        snapshot, which can be an epoch or two behind what the callback had logged; those epochs
        are trained again and must not be logged twice.
        """
        if trial_id not in self._steps:
            history = self.client.get_metric_history(run_id, "time_total_s")
            self._steps[trial_id] = max((m.step for m in history), default=0)
        return self._steps[trial_id]

    def on_trial_start(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._safely(self._start, trial)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Trial, result: dict, **info: Any
    ) -> None:
        self._safely(self._result, trial, result)

    def on_checkpoint(
        self, iteration: int, trials: list, trial: Trial, checkpoint: Checkpoint, **info: Any
    ) -> None:
        self._safely(self._figures, trial, checkpoint)

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._safely(self._close, trial, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._safely(self._close, trial, _error_text(trial))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._safely(self._drop_lost, {t.trial_id for t in trials})
        if getattr(self, "_failures", 0):
            log.warning("MLflow logging failed or was skipped %d times (server %s down?); every "
                        "trial's metrics are in Ray's results and trials.parquet",
                        self._failures, self.tracking_uri)

    def _drop_lost(self, trial_ids: set[str]) -> None:
        """Soft-deletes children of trials that Ray no longer knows.

        A trial started after the driver's last experiment snapshot is forgotten by
        ``Tuner.restore``; the searcher suggests a replacement under a new id. Its partial child
        would otherwise stand beside the replacement as a never-finished extra run. Deleted runs
        stay restorable (``mlflow runs restore``) until ``mlflow gc``.
        """
        for trial_id, run_id in list(self.runs.items()):
            if trial_id in trial_ids:
                continue
            self.client.set_tag(run_id, STATUS_TAG, "lost in a driver crash")
            self.client.set_terminated(run_id, status="KILLED")
            self.client.delete_run(run_id)
            del self.runs[trial_id]

    def _start(self, trial: Trial) -> None:
        run_id = self.child_run(trial)
        self.client.update_run(run_id, status="RUNNING")
        self.client.set_tag(run_id, STATUS_TAG, "running")

    def _result(self, trial: Trial, result: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric

        step = int(result.get("training_iteration") or 0)
        run_id = self.child_run(trial)
        if step <= self.logged_step(trial.trial_id, run_id):
            return
        stamp = _now_ms()
        values = with_key_section(numeric_metrics(result), getattr(self, "key_metrics", ()))
        metrics = [Metric(k, v, stamp, step) for k, v in values.items() if not math.isinf(v)]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])
        self._steps[trial.trial_id] = step

    def _figures(self, trial: Trial, checkpoint: Checkpoint) -> None:
        step = int((trial.last_result or {}).get("training_iteration") or 0)
        run_id = self.child_run(trial)
        with checkpoint.as_directory() as directory:
            for png in sorted(Path(directory, "figures").glob("*.png")):
                self.client.log_artifact(run_id, str(png), f"figures/epoch_{step:03d}")
            for table in sorted(Path(directory, "energy").glob("*.csv")):  # per-layer energy
                self.client.log_artifact(run_id, str(table), f"energy/epoch_{step:03d}")

    def _close(self, trial: Trial, error: str | None) -> None:
        run_id = self.child_run(trial)
        last = trial.last_result or {}
        epochs_run = last.get("training_iteration")
        reason = last.get(STOP_REASON)
        status = S.trial_status(
            errored=error is not None, epochs_run=epochs_run,
            planned_epochs=trial.config.get("epochs"), stop_reason=reason,
        )
        self.client.set_tag(run_id, STATUS_TAG, status)
        if status not in (S.COMPLETED, S.ERRORED):  # KILLED: say why in a tag
            self.client.set_tag(run_id, STOP_REASON_TAG, _stop_reason(status, reason, last,
                                                                        trial.config))
        self.client.set_tag(run_id, "snnsearch.epochs_run", str(epochs_run or 0))
        if error is not None:
            self.client.set_tag(run_id, ERROR_TAG, S.error_headline(error, _MAX_PARAM_LEN))
            self.client.log_text(run_id, error, "error.txt")
        self.client.set_terminated(run_id, status=mlflow_status(status))

    def _safely(self, fn: Any, *args: Any) -> None:
        """One MLflow call that never raises. After a failure MLflow is left alone for
        ``RETRY_AFTER_S``: every call to a dead server blocks Tune's driver loop for its timeout
        and retries, which would stall the reporting of every trial."""
        import time

        if time.monotonic() < getattr(self, "_down_until", 0.0):
            self._failures = getattr(self, "_failures", 0) + 1
            return
        try:
            fn(*args)
        except Exception as err:  # noqa: BLE001 - see module docstring: never stop the sweep
            self._failures = getattr(self, "_failures", 0) + 1
            self._down_until = time.monotonic() + RETRY_AFTER_S
            log.warning("MLflow logging failed in %s: %s: %s (results stay in Ray and "
                        "trials.parquet; next MLflow try in %.0f s)", fn.__name__,
                        type(err).__name__, err, RETRY_AFTER_S)


def _stop_reason(status: str, reason: Any, last: Mapping[str, Any],
                 config: Mapping[str, Any]) -> str:
    """The ``snnsearch.stop_reason`` tag of a KILLED child: the stopper's own word (``silent``,
    ``saturated``) or which rule stopped it and when."""
    if isinstance(reason, str) and reason:
        return reason
    epochs = f"after epoch {last.get('training_iteration') or 0} of {config.get('epochs', '?')}"
    return f"stopped early by the scheduler {epochs}" if status == S.STOPPED else status


def _error_text(trial: Trial) -> str:
    """The trial's error trace.

    Ray writes it to the trial's local staging dir (``trial.error_file``) just before calling
    ``on_trial_error``; ``get_error()`` reads the storage copy, which is synced only later.
    """
    try:
        local = getattr(trial, "error_file", None)
        if local and Path(local).is_file():
            return Path(local).read_text()
        text = trial.get_error()
        if text:
            return str(text)
        # Not trial.get_pickled_error(): it unpickles a file from the (untrusted) storage.
    except Exception as err:  # noqa: BLE001 - an unreadable error file must not hide the error
        return f"error file unreadable ({type(err).__name__}: {err})"
    return "trial errored (no error file)"


def write_parent_id(sweep_dir: str, run_id: str) -> None:
    """Stores the parent run id in the sweep directory (read back on ``--resume``)."""
    from snnsearch.storage import sweepdir as _storage

    _storage.write_text(_storage.join(sweep_dir, PARENT_ID_FILE), run_id + "\n")


def read_parent_id(sweep_dir: str) -> str | None:
    """The stored parent run id, or None for a new sweep."""
    from snnsearch.storage import sweepdir as _storage

    text = _storage.read_text(_storage.join(sweep_dir, PARENT_ID_FILE))
    return text.strip() if text else None


# The basics live in snnsearch.tracking.mlflow_client; re-exported here so callers use one module.
__all__ = [
    "ERROR_TAG", "KEY_SECTION", "NOTE_TAG", "PARENT_ID_FILE", "PARENT_TAG", "ROLE_TAG",
    "STATUS_TAG", "STOP_REASON_TAG", "SWEEP_TAG", "TRIAL_TAG", "NestedMlflowCallback",
    "SweepParentRun", "dump_json", "ensure_experiment", "environment_tags", "key_metric_names",
    "log_params", "make_client", "mlflow_status", "numeric_metrics", "read_parent_id",
    "with_key_section", "write_parent_id",
]
