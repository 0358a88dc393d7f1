"""MLflow logging of a sweep: one parent run per sweep, one nested child run per trial.

Ray's ``MLflowLoggerCallback`` makes every trial a top-level run, so the MLflow UI cannot group
or compare a sweep's trials. Here a Tune ``Callback`` on the driver queues each event and a
background writer thread makes the MLflow calls (:mod:`snnsearch.tracking.mlflow_writer`: the
driver's per-result work is a dict and a queue append; a slow, restarting or down server is
retried, never skipped, and what is still unwritten at the end is counted in the sweep summary).
Children carry the ``mlflow.parentRunId`` tag (how the UI nests runs) and a
``snnsearch.trial_id`` tag. Resume finds the parent through ``mlflow_parent_run_id.txt`` in the
sweep directory and the children through that tag, so a restored sweep adds no duplicate runs.
MLflow failures never stop the sweep: every metric is also in Ray's results and trials.parquet.

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
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from snnsearch.constants import STOP_REASON
from snnsearch.tracking import summary as S
from snnsearch.tracking.child_runs import ChildRuns, stored_results
from snnsearch.tracking.mlflow_client import (
    _MAX_NOTE_LEN,
    _MAX_PARAM_LEN,
    ERROR_TAG,
    KEY_METRICS,
    KEY_SECTION,
    NOTE_TAG,
    PARENT_ID_FILE,
    PARENT_TAG,
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
from snnsearch.tracking.mlflow_writer import (
    WriterPool,
    WriterReport,
    read_writer_report,
    write_report,
    writer_summary_line,
)

if TYPE_CHECKING:
    from ray.tune import Checkpoint
    from ray.tune.experiment import Trial

log = logging.getLogger(__name__)
PENDING_DIR = "mlflow_pending"  # in the sweep dir: the writer's spill file and staged figures
FLUSH_ENV = "SNNSEARCH_MLFLOW_FLUSH_S"
FLUSH_TIMEOUT_S = 120.0  # end of fit: longest wait without a write (a restarting server is back)


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
    """Tune callback writing one nested MLflow child run per trial, off the driver thread.

    Each hook turns the event into an op (a small dict) and queues it, O(1); a
    :class:`~snnsearch.tracking.mlflow_writer.WriterPool` of writer threads writes them through
    :class:`~snnsearch.tracking.child_runs.ChildRuns`, retrying until MLflow takes them. At the
    end of the fit (``on_experiment_end``) the queue is flushed: the wait lasts while MLflow takes
    writes and ends once none was taken for ``flush_timeout_s`` (or
    ``$SNNSEARCH_MLFLOW_FLUSH_S``) seconds; what could not be written is
    counted in ``mlflow_writer.<role>.json`` in the sweep directory, which the sweep summary
    reads (:func:`read_writer_report`).

    Picklable (Ray stores callbacks in ``tuner.pkl`` for ``Tuner.restore``): the writer, the
    client and the trial → run map are rebuilt lazily, the map from the ``snnsearch.trial_id``
    tags.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment_id: experiment holding the parent run.
        parent_run_id: the sweep's parent run.
        sweep: sweep name (tag on every child).
        key_metrics: metrics also logged under ``Key metrics/`` (the sweep's objectives first;
            :func:`key_metric_names`).
        role: the children's ``snnsearch.role`` tag ("trial"; "repeat" for ``--repeats``).
        sweep_dir: where the spill file, the staged figures and the writer's report go (a local
            folder; None or a URI: a private temporary folder, so nothing survives the driver).
        max_buffer: ops kept in memory (per writer) before they spill to the file.
        writers: writer threads; a trial's ops all go to one of them, in order.
        flush_timeout_s: at the end of the fit, how long to wait for the backlog without any
            op written (None: the environment variable, else :data:`FLUSH_TIMEOUT_S`).
    """

    def __init__(
        self, *, tracking_uri: str, experiment_id: str, parent_run_id: str, sweep: str,
        key_metrics: Iterable[str] = KEY_METRICS, role: str = "trial",
        sweep_dir: str | None = None, max_buffer: int = 20_000, writers: int = 4,
        flush_timeout_s: float | None = None,
    ) -> None:
        self.writers = writers
        self.key_metrics = tuple(key_metrics)
        self.role = role
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.sweep = sweep
        self.sweep_dir = sweep_dir
        self.max_buffer = max_buffer
        self.flush_timeout_s = flush_timeout_s
        self._writer: WriterPool | None = None
        self._folder: Path | None = None
        self._closed: set[str] = set()  # trials whose close op this driver queued

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_writer"] = state["_folder"] = None
        state["_closed"] = set()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A sweep started before the writer existed stores a callback without these fields.
        defaults = {"sweep_dir": None, "max_buffer": 20_000, "writers": 4,
                    "flush_timeout_s": None, "role": "trial", "key_metrics": ()}
        self.__dict__.update({**defaults, **state, "_writer": None, "_folder": None,
                              "_closed": set()})

    @property
    def folder(self) -> Path:
        """Local folder of the spill file and staged artifacts."""
        if self._folder is None:
            from snnsearch.storage import sweepdir as _storage

            if self.sweep_dir and not _storage.is_uri(self.sweep_dir):
                self._folder = Path(self.sweep_dir) / PENDING_DIR
            else:
                self._folder = Path(tempfile.mkdtemp(prefix="snnsearch_mlflow_"))
        return self._folder

    @property
    def writer(self) -> WriterPool:
        """The writer threads, started on first use (one MLflow client each)."""
        if self._writer is None:
            shards = max(1, int(self.writers))
            appliers = [ChildRuns(
                tracking_uri=self.tracking_uri, experiment_id=self.experiment_id,
                parent_run_id=self.parent_run_id, sweep=self.sweep, role=self.role,
                key_metrics=self.key_metrics, staging=self.folder / f"{self.role}_artifacts",
                shard=k, shards=shards).apply for k in range(shards)]
            self._writer = WriterPool(
                appliers=appliers, max_buffer=self.max_buffer,
                spill_paths=[self.folder / f"{self.role}.{k}.jsonl" for k in range(shards)])
        return self._writer

    def on_trial_start(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self.writer.put({"op": "start", "trial": trial.trial_id, "name": str(trial),
                         "params": {str(k): str(v) for k, v in trial.config.items()}})

    def on_trial_result(
        self, iteration: int, trials: list, trial: Trial, result: dict, **info: Any
    ) -> None:
        self.writer.put({"op": "result", "trial": trial.trial_id,
                         "step": int(result.get("training_iteration") or 0),
                         "time": _now_ms(), "metrics": numeric_metrics(result)})

    def on_checkpoint(
        self, iteration: int, trials: list, trial: Trial, checkpoint: Checkpoint, **info: Any
    ) -> None:
        try:
            files = self._stage_figures(trial, checkpoint)
        except Exception as err:  # noqa: BLE001 - a figure is not worth a trial
            log.warning("figures of %s not staged for MLflow: %s: %s", trial,
                        type(err).__name__, err)
            return
        if files:
            self.writer.put({"op": "artifacts", "trial": trial.trial_id, "files": files})

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._closed.add(trial.trial_id)
        self.writer.put(_close_op(trial, None))

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._closed.add(trial.trial_id)
        self.writer.put(_close_op(trial, _error_text(trial)))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.writer.put({"op": "drop_lost", "keep": [t.trial_id for t in trials]})
        for trial in trials:
            if trial.trial_id not in self._closed and trial.status in ("TERMINATED", "ERROR"):
                self._replay_finished(trial)
        self.finish()

    def _replay_finished(self, trial: Trial) -> None:
        """Queues again what a killed driver may have held in memory for a trial that finished
        before it died (Ray restores such a trial finished and calls no callback for it): its
        child (reopened or created), every result in its ``result.json`` (the writer skips the
        steps MLflow already has) and its close. Without it a ``kill -9`` left children RUNNING
        with their last epochs missing."""
        self.on_trial_start(0, [], trial)
        for result in stored_results(trial):
            self.writer.put({"op": "result", "trial": trial.trial_id,
                             "step": int(result.get("training_iteration") or 0),
                             "time": _now_ms(), "metrics": numeric_metrics(result)})
        self._closed.add(trial.trial_id)
        self.writer.put(_close_op(trial, _error_text(trial) if trial.status == "ERROR" else None))

    def flush(self, timeout_s: float = 60.0) -> WriterReport:
        """Waits until everything queued is in MLflow (or ``timeout_s`` without progress)."""
        return self.writer.flush(timeout_s)

    def finish(self) -> WriterReport:
        """Flushes (while MLflow takes writes), stops the writer (the rest stays in the spill file)
        and records the outcome in the sweep directory for the summary."""
        timeout = self.flush_timeout_s
        if timeout is None:
            timeout = float(os.environ.get(FLUSH_ENV) or FLUSH_TIMEOUT_S)
        self.writer.flush(timeout)
        report = self.writer.close()
        self._writer = None
        if report.unwritten_ops:
            log.warning("MLflow at %s did not take %d updates (%d metric values); none was "
                        "taken for %.0f s (%s); they are in trials.parquet, and kept in %s for "
                        "a --resume",
                        self.tracking_uri, report.unwritten_ops, report.unwritten_metrics,
                        timeout, report.last_error, self.folder)
        if self.sweep_dir:
            write_report(self.sweep_dir, self.role, report)
        if not report.unwritten_ops and self._folder is not None:
            # Nothing left to replay: the spill/staging folder goes (one in the temp dir, for a
            # callback without a local sweep directory, would otherwise stay there forever).
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        return report

    def _stage_figures(self, trial: Trial, checkpoint: Checkpoint) -> list[list[str]]:
        """Copies the checkpoint's figures and energy tables to the staging folder: Ray may
        delete the checkpoint (``num_to_keep``) before the writer uploads them."""

        step = int((trial.last_result or {}).get("training_iteration") or 0)
        files: list[list[str]] = []
        with checkpoint.as_directory() as directory:
            found = [(p, f"figures/epoch_{step:03d}")
                     for p in sorted(Path(directory, "figures").glob("*.png"))]
            found += [(p, f"energy/epoch_{step:03d}")  # per-layer energy
                      for p in sorted(Path(directory, "energy").glob("*.csv"))]
            if not found:
                return []
            target = self.folder / f"{self.role}_artifacts" / trial.trial_id / f"{step:04d}"
            target.mkdir(parents=True, exist_ok=True)
            for path, artifact_dir in found:
                copy = target / path.parent.name / path.name
                copy.parent.mkdir(exist_ok=True)
                shutil.copyfile(path, copy)
                files.append([str(copy), artifact_dir])
        return files


def _close_op(trial: Trial, error: str | None) -> dict[str, Any]:
    """The ``close`` op of a finished trial: status words and tags decided on the driver."""
    last = trial.last_result or {}
    epochs_run = last.get("training_iteration")
    reason = last.get(STOP_REASON)
    status = S.trial_status(
        errored=error is not None, epochs_run=epochs_run,
        planned_epochs=trial.config.get("epochs"), stop_reason=reason,
    )
    tags = {STATUS_TAG: status, "snnsearch.epochs_run": str(epochs_run or 0)}
    if status not in (S.COMPLETED, S.ERRORED):  # KILLED: say why in a tag
        tags[STOP_REASON_TAG] = _stop_reason(status, reason, last, trial.config)
    if error is not None:
        tags[ERROR_TAG] = S.error_headline(error, _MAX_PARAM_LEN) or "errored"
    return {"op": "close", "trial": trial.trial_id, "status": mlflow_status(status),
            "tags": tags, "error": error}


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
    "SweepParentRun", "WriterReport", "dump_json", "ensure_experiment", "environment_tags",
    "key_metric_names", "log_params", "make_client", "mlflow_status", "numeric_metrics",
    "read_parent_id", "read_writer_report", "with_key_section", "write_parent_id",
    "writer_summary_line",
]
