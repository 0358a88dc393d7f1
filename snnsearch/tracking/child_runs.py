"""The MLflow side of the per-trial child runs: applies the ops that
:class:`snnsearch.tracking.mlflow_logging.NestedMlflowCallback` queues, on the writer thread
(:mod:`snnsearch.tracking.mlflow_writer`).

Ops (JSON-able dicts, so they can wait in the spill file):

- ``{"op": "start", "trial", "name", "params"}``: create the child (or reopen it), RUNNING;
- ``{"op": "result", "trial", "step", "time", "metrics"}``: one Tune result;
- ``{"op": "artifacts", "trial", "files": [[path, artifact_dir], ...]}``: figures/energy tables
  copied out of a checkpoint into the staging folder (the checkpoint may be deleted before the
  writer gets to them); a path outside the staging folder is refused (the spill file lives in
  the sweep directory, which is untrusted on resume);
- ``{"op": "close", "trial", "status", "tags", "error"}``: final status tags and run status;
- ``{"op": "drop_lost", "keep": [trial ids]}``: soft-delete children of trials Ray forgot.

A batch of ops is written per trial (:meth:`ChildRuns.apply`): what one trial has waiting
becomes ``create_run`` (new child), one ``log_batch`` with its params, every waiting result's
metrics and its final tags, the uploads, then ``set_terminated``. A backlog (a slow or returning
server) therefore drains in about three requests per trial instead of two per result plus five,
which is what lets a single-worker server catch up with a 1,000-trial sweep.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snnsearch.tracking.mlflow_client import (
    PARENT_TAG,
    ROLE_TAG,
    STATUS_TAG,
    SWEEP_TAG,
    TRIAL_TAG,
    environment_tags,
    make_client,
    param_entities,
    with_key_section,
)
from snnsearch.tracking.mlflow_writer import Op, shard_of

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)
SUPPRESS_URL_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
MAX_METRICS_PER_REQUEST = 1000  # MLflow's log_batch limits: entities per request,
MAX_PARAMS_PER_REQUEST = 100  # params per request,
MAX_TAGS_PER_REQUEST = 100  # tags per request


class ChildRuns:
    """Trial id → child run, and the MLflow calls for each op kind.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment_id: experiment holding the parent run.
        parent_run_id: the sweep's parent run.
        sweep: sweep name (tag on every child).
        role: the children's ``snnsearch.role`` tag.
        key_metrics: metrics also logged under ``Key metrics/``.
        staging: the only folder ``artifacts`` ops may upload from.
        shard: which trials are this applier's (``shard_of(trial_id, shards) == shard``): the
            trials of the other writers are theirs to reuse and drop.
        shards: number of writers.
    """

    def __init__(
        self, *, tracking_uri: str, experiment_id: str, parent_run_id: str, sweep: str,
        role: str, key_metrics: Iterable[str], staging: Path, shard: int = 0, shards: int = 1,
    ) -> None:
        self.shard, self.shards = shard, shards
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.sweep = sweep
        self.role = role
        self.key_metrics = tuple(key_metrics)
        self.staging = staging
        self._client: MlflowClient | None = None
        self._runs: dict[str, str] | None = None
        self._steps: dict[str, int] = {}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            # MLflow prints a "View run" link (after one more get_run request) for every run it
            # ends on a tracking server: two console lines and a request per trial here. Off
            # unless the user asked for it (the variable is MLflow's; process-wide).
            os.environ.setdefault(SUPPRESS_URL_ENV, "true")
            self._client = make_client(self.tracking_uri)
        return self._client

    @property
    def runs(self) -> dict[str, str]:
        """trial_id → child run id, seeded from MLflow so resume reuses existing children.

        Only children of this role: the ``--repeats`` Tuner shares the parent, and its callback
        must neither reuse nor (``drop_lost``) delete the search's children.
        """
        if self._runs is None:
            found = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
                max_results=50000,
            )
            self._runs = {
                r.data.tags[TRIAL_TAG]: r.info.run_id for r in found
                if TRIAL_TAG in r.data.tags and r.data.tags.get(ROLE_TAG, "trial") == self.role
                and shard_of(r.data.tags[TRIAL_TAG], self.shards) == self.shard
            }
        return self._runs

    def apply(self, ops: list[Op]) -> None:
        """Writes ``ops``, removing each from ``ops`` once written (the writer's contract).

        Ops of different trials are independent, so the batch is regrouped per trial, each
        trial's ops in their order; an op naming no trial (``drop_lost``) is a barrier, written
        after everything queued before it. A failure leaves the unwritten trials' ops in
        ``ops`` for the retry (re-sending a trial's part that did reach MLflow is harmless).
        """
        while ops:
            if ops[0].get("trial") is None:
                kind = str(ops[0].get("op"))
                if kind == "drop_lost":
                    self._drop_lost(ops[0])
                else:
                    log.warning("dropping an unknown MLflow op %r", kind)
                del ops[0]
                continue
            barrier = next((i for i, op in enumerate(ops) if op.get("trial") is None),
                           len(ops))
            groups: dict[str, list[Op]] = {}
            for op in ops[:barrier]:
                groups.setdefault(str(op["trial"]), []).append(op)
            written: set[int] = set()
            try:
                for trial_id, trial_ops in groups.items():
                    for segment in _segments(trial_ops):
                        self._write_segment(trial_id, segment)
                        written.update(id(op) for op in segment)
            finally:
                ops[:] = [op for op in ops if id(op) not in written]

    def _write_segment(self, trial_id: str, segment: list[Op]) -> None:
        """One trial's ops, from at most one ``start`` to at most one ``close``, in as few
        requests as MLflow allows."""
        from mlflow.entities import Metric

        start = segment[0] if segment[0].get("op") == "start" else None
        close = segment[-1] if segment[-1].get("op") == "close" else None
        tags: dict[str, str] = {}
        params: dict[str, Any] = {}
        if start is not None:
            params = dict(start.get("params") or {})
            if trial_id in self.runs:  # reopened (resume, or a retried trial)
                self.client.update_run(self.runs[trial_id], status="RUNNING")
                tags[STATUS_TAG] = "running"
            else:  # a new child is created RUNNING, tagged "running"
                self.child_run(trial_id, start.get("name"))
        run_id = self.child_run(trial_id)
        metrics: list[Metric] = []
        last = self.logged_step(trial_id, run_id)
        for op in segment:
            if op.get("op") != "result":
                continue
            step = int(op["step"])
            if step <= last:  # already in MLflow (a replay after a driver crash)
                continue
            values = with_key_section(_floats(op.get("metrics")), self.key_metrics)
            stamp = int(op["time"])
            metrics.extend(Metric(k, v, stamp, step) for k, v in values.items()
                           if not math.isinf(v))
            last = step
        if close is not None:
            tags.update({str(k): str(v) for k, v in (close.get("tags") or {}).items()})
        self._log_batch(run_id, metrics, param_entities(params), tags)
        self._steps[trial_id] = last
        for op in segment:
            if op.get("op") == "artifacts":
                self._artifacts(op)
            elif op.get("op") not in ("start", "result", "close"):
                log.warning("dropping an unknown MLflow op %r", op.get("op"))
        if close is not None:
            if close.get("error"):
                self.client.log_text(run_id, str(close["error"]), "error.txt")
            self.client.set_terminated(run_id, status=str(close["status"]))

    def _log_batch(self, run_id: str, metrics: list[Any], params: list[Any],
                   tags: Mapping[str, str]) -> None:
        """``log_batch`` requests within MLflow's limits (params and tags ride with the first
        metrics)."""
        from mlflow.entities import RunTag

        tag_list = [RunTag(k, v) for k, v in tags.items()]
        while metrics or params or tag_list:
            p, params = params[:MAX_PARAMS_PER_REQUEST], params[MAX_PARAMS_PER_REQUEST:]
            t, tag_list = tag_list[:MAX_TAGS_PER_REQUEST], tag_list[MAX_TAGS_PER_REQUEST:]
            room = MAX_METRICS_PER_REQUEST - len(p) - len(t)
            m, metrics = metrics[:room], metrics[room:]
            self.client.log_batch(run_id, metrics=m, params=p, tags=t)

    def child_run(self, trial_id: str, name: str | None = None) -> str:
        """The trial's child run id, created (tagged, RUNNING) the first time."""
        run_id = self.runs.get(trial_id)
        if run_id is not None:
            return run_id
        tags = {
            PARENT_TAG: self.parent_run_id, TRIAL_TAG: trial_id, SWEEP_TAG: self.sweep,
            ROLE_TAG: self.role, STATUS_TAG: "running", **environment_tags(),
        }
        try:
            run = self.client.create_run(self.experiment_id, run_name=name or trial_id, tags=tags)
        except Exception:
            # The request may have created the run before failing: look it up on the retry.
            self._runs = None
            raise
        run_id = run.info.run_id
        self.runs[trial_id] = run_id
        self._steps[trial_id] = 0
        return run_id

    def logged_step(self, trial_id: str, run_id: str) -> int:
        """Last step already in MLflow for this trial (0 for a new child).

        After a driver crash, Ray resumes a trial from the checkpoint in its last experiment
        snapshot, which can be an epoch or two behind what was logged; those epochs are trained
        again and must not be logged twice.
        """
        if trial_id not in self._steps:
            history = self.client.get_metric_history(run_id, "time_total_s")
            self._steps[trial_id] = max((m.step for m in history), default=0)
        return self._steps[trial_id]

    def _artifacts(self, op: Op) -> None:
        run_id = self.child_run(str(op["trial"]))
        root = self.staging.resolve()
        for path, artifact_dir in op.get("files") or []:
            local = Path(path).resolve()
            if not local.is_relative_to(root):
                log.warning("refusing to upload %s: outside the staging folder %s", path, root)
                continue
            if local.is_file():
                self.client.log_artifact(run_id, str(local), str(artifact_dir))
        for path, _ in op.get("files") or []:  # uploaded: the staged copies (and folders) go
            local = Path(path).resolve()
            if not local.is_relative_to(root):
                continue
            local.unlink(missing_ok=True)
            for folder in local.parents:
                if folder == root or not folder.is_relative_to(root):
                    break
                try:
                    folder.rmdir()
                except OSError:  # not empty: another file of this op is still there
                    break

    def _drop_lost(self, op: Op) -> None:
        """Soft-deletes children of trials that Ray no longer knows.

        A trial started after the driver's last experiment snapshot is forgotten by
        ``Tuner.restore``; the searcher suggests a replacement under a new id. Its partial child
        would otherwise stand beside the replacement as a never-finished extra run. Deleted runs
        stay restorable (``mlflow runs restore``) until ``mlflow gc``.
        """
        keep = set(op.get("keep") or ())
        for trial_id, run_id in list(self.runs.items()):
            if trial_id in keep:
                continue
            self.client.set_tag(run_id, STATUS_TAG, "lost in a driver crash")
            self.client.set_terminated(run_id, status="KILLED")
            self.client.delete_run(run_id)
            del self.runs[trial_id]


def stored_results(trial: Any) -> list[dict[str, Any]]:
    """The results in the trial's ``result.json`` on the storage (JSON lines, nothing
    unpickled); none when it cannot be read."""
    try:
        fs = trial.storage.storage_filesystem
        with fs.open_input_stream(f"{trial.storage.trial_fs_path}/result.json") as stream:
            text = stream.readall().decode("utf-8", errors="replace")
    except (OSError, AttributeError) as err:
        log.warning("results of %s not replayed to MLflow: %s", trial, err)
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut by the kill
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _floats(metrics: Any) -> dict[str, float]:
    """Metric values of an op as floats (a spilled op is re-read from an untrusted file)."""
    if not isinstance(metrics, dict):
        return {}
    return {str(k): float(v) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def _segments(trial_ops: list[Op]) -> list[list[Op]]:
    """One trial's ops cut before every ``start`` and after every ``close`` (a trial Ray
    retried closes and starts again; each life is written in order)."""
    segments: list[list[Op]] = []
    current: list[Op] = []
    for op in trial_ops:
        if op.get("op") == "start" and current:
            segments.append(current)
            current = []
        current.append(op)
        if op.get("op") == "close":
            segments.append(current)
            current = []
    if current:
        segments.append(current)
    return segments
