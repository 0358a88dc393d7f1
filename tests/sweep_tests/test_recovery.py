"""A start that never ran (snnsearch/sweep/recovery.py), without Ray: what counts as "nothing
ran", what is cleared (only what a start writes), and which stale MLflow parent is reused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snnsearch.sweep import recovery
from snnsearch.tracking import mlflow_logging as M


def test_nothing_ran_until_a_trial_reports_or_a_table_exists(tmp_path: Path) -> None:
    (tmp_path / "tuner.pkl").write_bytes(b"x")
    (tmp_path / "experiment_state-1.json").write_text("{}")
    trial = tmp_path / "quadratic_1"
    trial.mkdir()
    (trial / "params.json").write_text("{}")
    (trial / "result.json").write_text("")
    assert recovery.nothing_ran(str(tmp_path))
    (trial / "result.json").write_text('{"epoch": 1}\n')
    assert not recovery.nothing_ran(str(tmp_path))
    (trial / "result.json").write_text("")
    (tmp_path / "trials.parquet").write_bytes(b"x")
    assert not recovery.nothing_ran(str(tmp_path))


def test_clear_leftovers_removes_only_what_a_start_writes(tmp_path: Path) -> None:
    own = ["tuner.pkl", "sweep.json", "space.yaml", M.PARENT_ID_FILE, "experiment_state-x.json",
           "searcher-state-x.pkl", "basic-variant-state-x.json", ".validate_storage_marker"]
    for name in [*own, "notes.json", "data.pkl"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "trial_a").mkdir()
    (tmp_path / "trial_a" / "params.json").write_text("{}")
    (tmp_path / "folder").mkdir()
    recovery.clear_leftovers(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.pkl", "folder", "notes.json"]
    # A folder that never held a sweep start is left alone entirely.
    other = tmp_path / "other"
    other.mkdir()
    (other / "experiment_state-x.json").write_text("x")
    recovery.clear_leftovers(str(other))
    assert (other / "experiment_state-x.json").exists()


def test_kill_point_does_nothing_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    killed = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: killed.append(sig))
    monkeypatch.delenv(recovery.KILL_ENV, raising=False)
    recovery.kill_point("after-tuner")
    monkeypatch.setenv(recovery.KILL_ENV, "before-report")
    recovery.kill_point("after-tuner")
    assert killed == []
    recovery.kill_point("before-report")
    assert len(killed) == 1


def test_a_stale_parent_is_reused_with_the_same_params_else_closed_killed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = M.SweepParentRun(tracking_uri=uri, experiment="recovery")
    params = {"storage": str(tmp_path), "name": "s", "samples": 4}
    run_id = parent.start(name="s", params=params, space={})
    child = parent.client.create_run(parent.experiment_id, tags={M.PARENT_TAG: run_id})
    sweep = tmp_path / "s"
    M.write_parent_id(str(sweep), run_id)
    kwargs = {"experiment_id": parent.experiment_id, "sweep_dir": str(sweep), "name": "s",
              "storage": str(tmp_path)}
    assert recovery.reusable_parent(parent.client, params=params, **kwargs) == run_id
    assert parent.client.get_run(child.info.run_id).info.lifecycle_stage == "deleted"
    assert parent.client.get_run(run_id).info.status == "RUNNING"
    # Other flags this time: the old parent cannot carry them; it is closed, not left RUNNING.
    assert recovery.reusable_parent(parent.client, params={**params, "samples": 8},
                                    **kwargs) is None
    assert parent.client.get_run(run_id).info.status == "KILLED"
