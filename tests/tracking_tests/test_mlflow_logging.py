"""The nested MLflow callback fed by hand (no Ray cluster): children nest under the parent, carry
params/metrics/status, errored trials keep their message, and a restored callback reuses runs."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from snnsearch.testing.sweeps import sweep_runs
from snnsearch.tracking import mlflow_logging as M
from snnsearch.tracking.summary import COMPLETED, ERRORED, SILENT, STOPPED


@dataclass
class FakeTrial:
    """The slice of ``ray.tune.experiment.Trial`` the callback reads."""

    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def __str__(self) -> str:
        return f"fake_{self.trial_id}"

    def get_error(self) -> str | None:
        return self.error

    def get_pickled_error(self) -> None:
        return None


@pytest.fixture
def tracking(
    mlflow_uri: str, request: pytest.FixtureRequest
) -> tuple[str, M.SweepParentRun, str]:
    """A parent run in an experiment of its own (the sqlite store is shared: creating one
    runs MLflow's migrations, ≈6 s on 2 cores)."""
    parent = M.SweepParentRun(tracking_uri=mlflow_uri, experiment=request.node.name)
    run_id = parent.start(name="sweep", params={"samples": 3}, space={"space": {}})
    return mlflow_uri, parent, run_id


def _callback(uri: str, parent: M.SweepParentRun, run_id: str,
              sweep_dir: Path) -> M.NestedMlflowCallback:
    # A sweep directory of the test's own: without one the spill folder is a temp folder.
    return M.NestedMlflowCallback(
        tracking_uri=uri, experiment_id=parent.experiment_id, parent_run_id=run_id, sweep="sweep",
        key_metrics=M.key_metric_names(["val_acc"]), sweep_dir=str(sweep_dir),
    )


def _run(cb: M.NestedMlflowCallback, trial: FakeTrial, epochs: int, **extra: Any) -> None:
    cb.on_trial_start(0, [], trial)
    for epoch in range(1, epochs + 1):
        result = {"training_iteration": epoch, "val_acc": 0.1 * epoch, "firing_rate/fc1": 0.2,
                  "energy_mj": 0.01, "epoch_time_s": 2.0, "train_images_per_s": 900.0,
                  "timestamp": 123, "done": False, "hostname": "h", "config": {}, **extra}
        trial.last_result = result
        cb.on_trial_result(0, [], trial, result)


def test_children_nest_with_params_metrics_and_status(tracking: tuple, tmp_path: Path) -> None:
    uri, parent, run_id = tracking
    cb = _callback(uri, parent, run_id, tmp_path)
    full, cut, broken, quiet = (
        FakeTrial(t, {"epochs": 3, "lr": 0.01}) for t in ("a", "b", "c", "d"))
    _run(cb, full, 3)
    cb.on_trial_complete(0, [], full)
    _run(cb, cut, 1)
    cb.on_trial_complete(0, [], cut)
    _run(cb, broken, 2)
    broken.error = "Traceback (most recent call last):\n ...\nValueError: lr exploded at epoch 2"
    cb.on_trial_error(0, [], broken)
    _run(cb, quiet, 1, stop_reason="silent")  # the silence stopper's mark
    cb.on_trial_complete(0, [], quiet)
    assert cb.flush(60).unwritten_ops == 0  # the writer thread made the MLflow calls

    parents, children = sweep_runs(uri, parent_run_id=run_id)
    assert [p.info.run_id for p in parents] == [run_id]
    assert len(children) == 4
    by_trial = {c.data.tags[M.TRIAL_TAG]: c for c in children}
    assert all(c.data.tags[M.PARENT_TAG] == run_id for c in children)
    assert by_trial["a"].data.params["lr"] == "0.01"
    # Flat names (the contract with Ray/Parquet) plus the key ones again under "Key metrics/",
    # the section MLflow's run page shows first; per-layer rates stay under firing_rate/.
    key = ["val_acc", "energy_mj", "epoch_time_s", "train_images_per_s"]
    assert set(by_trial["a"].data.metrics) == {
        *key, "firing_rate/fc1", *(f"Key metrics/{k}" for k in key)}
    sections = sorted({m.rsplit("/", 1)[0] for m in by_trial["a"].data.metrics if "/" in m})
    assert sections[0] == "Key metrics"
    history = M.make_client(uri).get_metric_history(by_trial["a"].info.run_id, "val_acc")
    assert [m.step for m in history] == [1, 2, 3]
    assert by_trial["a"].data.tags[M.STATUS_TAG] == COMPLETED
    assert by_trial["b"].data.tags[M.STATUS_TAG] == STOPPED
    assert by_trial["c"].data.tags[M.STATUS_TAG] == ERRORED
    assert by_trial["d"].data.tags[M.STATUS_TAG] == SILENT
    assert by_trial["c"].data.tags[M.ERROR_TAG] == "ValueError: lr exploded at epoch 2"
    # Honest MLflow statuses: only a full-budget trial is FINISHED; the reason rides in a tag.
    assert {t: by_trial[t].info.status for t in "abcd"} == {
        "a": "FINISHED", "b": "KILLED", "c": "FAILED", "d": "KILLED"}
    assert by_trial["b"].data.tags[M.STOP_REASON_TAG] == (
        "stopped early by the scheduler after epoch 1 of 3")
    assert by_trial["d"].data.tags[M.STOP_REASON_TAG] == "silent"
    assert M.STOP_REASON_TAG not in by_trial["a"].data.tags
    assert "mlflow.source.git.commit" in by_trial["a"].data.tags
    assert by_trial["a"].data.tags["version.ray"].startswith("2.60")


def test_restored_callback_reuses_children_instead_of_duplicating(
    tracking: tuple, tmp_path: Path
) -> None:
    uri, parent, run_id = tracking
    cb = _callback(uri, parent, run_id, tmp_path)
    trial = FakeTrial("a", {"epochs": 4})
    _run(cb, trial, 2)
    cb.flush(60)
    # Ray pickles callbacks into tuner.pkl; Tuner.restore unpickles a fresh copy.
    restored = pickle.loads(pickle.dumps(cb))
    assert restored._writer is None and restored._folder is None
    restored.on_trial_start(0, [], trial)
    for epoch in (3, 4):
        trial.last_result = {"training_iteration": epoch, "val_acc": 0.5}
        restored.on_trial_result(0, [], trial, trial.last_result)
    restored.on_trial_complete(0, [], trial)
    assert restored.flush(60).unwritten_ops == 0
    _, children = sweep_runs(uri, parent_run_id=run_id)
    assert len(children) == 1
    assert children[0].data.tags[M.STATUS_TAG] == COMPLETED
    # Reopening the parent keeps its id (the sweep dir stores it across driver restarts).
    assert parent.start(name="sweep", params={}, space={}, existing_run_id=run_id) == run_id


def test_parent_gets_summary_and_mlflow_errors_never_raise(
    tracking: tuple, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri, parent, run_id = tracking
    summary = {"metric": "val_acc", "mode": "max", "trials": 2, "total_trial_time_s": 7.0,
               "gpu_hours": 0.5, "counts": {COMPLETED: 1, STOPPED: 1, ERRORED: 0},
               "best_trial_id": "a", "best_value": 0.9}
    parent.finish(run_id, summary=summary, text="summary text", description="# Sweep\n| a |")
    run = M.make_client(uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[M.NOTE_TAG] == "# Sweep\n| a |"  # the UI's run description
    assert run.data.metrics["best_val_acc"] == 0.9 and run.data.metrics["n_stopped_early"] == 1
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    broken = M.NestedMlflowCallback(tracking_uri="http://127.0.0.1:9", experiment_id="0",
                                    parent_run_id="x", sweep="s", flush_timeout_s=1.0,
                                    sweep_dir=str(tmp_path))
    broken.on_trial_start(0, [], FakeTrial("z", {}))  # unreachable server: queued, no raise
    report = broken.finish()
    assert report.unwritten_ops == 1 and report.retries >= 1 and report.last_error


def test_parent_run_id_file_round_trips(tmp_path: Path) -> None:
    assert M.read_parent_id(str(tmp_path)) is None
    M.write_parent_id(str(tmp_path / "sweep"), "abc123")
    assert M.read_parent_id(str(tmp_path / "sweep")) == "abc123"
