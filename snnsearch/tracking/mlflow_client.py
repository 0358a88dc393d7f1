"""MLflow basics shared by the sweep's parent run and the per-trial callback
(:mod:`snnsearch.tracking.mlflow_logging`): tag names, the client, the experiment, batched params,
which result values are metrics, and the "Key metrics/" section.

``KEY_SECTION``: MLflow 3.17's run page groups metric charts into sections by the prefix before the
last ``/`` and sorts them by that prefix, so ``Key metrics/val_acc`` sorts before every lower-case
prefix (``firing_rate/*``) and a trial's objectives show first (see mlflow_logging's docstring).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snnsearch.constants import ENERGY_MJ, EPOCH_TIME, IMAGES_PER_S, TEST_ACC
from snnsearch.tracking import summary as S

if TYPE_CHECKING:
    from mlflow import MlflowClient

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "snnsearch.trial_id"
SWEEP_TAG = "snnsearch.sweep"
STATUS_TAG = "snnsearch.status"
STOP_REASON_TAG = "snnsearch.stop_reason"
ERROR_TAG = "snnsearch.error"
ROLE_TAG = "snnsearch.role"
NOTE_TAG = "mlflow.note.content"  # the run's "Description" in the MLflow UI (Markdown)
KEY_SECTION = "Key metrics/"
# Always in the key section when a trial reports them (besides the sweep's objectives).
KEY_METRICS = (TEST_ACC, ENERGY_MJ, EPOCH_TIME, IMAGES_PER_S)
PARENT_ID_FILE = "mlflow_parent_run_id.txt"
PACKAGES = ("snnsearch", "torch", "spikingjelly", "ray", "optuna", "mlflow", "pyarrow", "numpy")
# Ray bookkeeping keys that are numbers but not metrics worth a chart.
SKIP_KEYS = frozenset(
    {"timestamp", "pid", "done", "training_iteration", "time_since_restore",
     "iterations_since_restore", "warmup_time", "should_checkpoint"}
)
_MAX_PARAM_LEN = 6000  # MLflow's limit on a param value
_MAX_NOTE_LEN = 8000  # MLflow's limit on a tag value


def make_client(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` bound to ``tracking_uri`` (no process-wide ``set_tracking_uri``)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """Experiment id for ``name``, created on first use.

    With a sqlite store, artifacts go to ``mlartifacts/`` beside the database file rather than
    MLflow's default of the current directory, which differs between the CLI and a Ray job.
    """
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    from mlflow.exceptions import MlflowException

    location = None
    if tracking_uri.startswith("sqlite:///"):
        location = str(Path(tracking_uri[len("sqlite:///"):]).parent / "mlartifacts" / name)
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # another sweep created it between the lookup and now
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


@functools.cache
def environment_tags() -> dict[str, str]:
    """Git commit and package versions, so a run can be reproduced from its tags."""
    tags = {}
    repo = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo, capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
        if commit:
            tags["mlflow.source.git.commit"] = commit
            tags["snnsearch.git_dirty"] = str(bool(dirty)).lower()
    except (OSError, subprocess.SubprocessError):
        pass
    for package in PACKAGES:
        try:
            tags[f"version.{package}"] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return tags


def param_entities(params: Mapping[str, Any]) -> list[Any]:
    """``params`` as MLflow ``Param`` entities: values as strings cut to MLflow's limit."""
    from mlflow.entities import Param

    return [Param(str(k), str(v)[:_MAX_PARAM_LEN]) for k, v in sorted(params.items())]


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, Any]) -> None:
    """Logs params in batches of 100 (MLflow's per-request limit), values as strings."""
    items = param_entities(params)
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start : start + 100])


def numeric_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The plottable metrics of a Tune result: numbers, not bools, minus Ray bookkeeping."""
    out = {}
    for key, value in result.items():
        if key in SKIP_KEYS or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[key] = float(value)
    return out


def key_metric_names(objectives: Iterable[str]) -> tuple[str, ...]:
    """The metrics shown first in MLflow: the sweep's objectives, then :data:`KEY_METRICS`."""
    return tuple(dict.fromkeys([*objectives, *KEY_METRICS]))


def with_key_section(metrics: Mapping[str, float], key_names: Iterable[str]) -> dict[str, float]:
    """``metrics`` plus a ``Key metrics/<name>`` copy of each key metric present (see the module
    docstring: the copy is what puts them at the top of MLflow's run page)."""
    out = dict(metrics)
    for name in key_names:
        if name in metrics:
            out[KEY_SECTION + name] = metrics[name]
    return out


def mlflow_status(status: str) -> str:
    """MLflow run status for a trial status word of :mod:`snnsearch.tracking.summary`."""
    if status == S.COMPLETED:
        return "FINISHED"
    if status == S.ERRORED:
        return "FAILED"
    return "KILLED"  # stopped early by the scheduler, or silent/saturated


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def dump_json(obj: Any) -> str:
    """Stable JSON for settings files."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
