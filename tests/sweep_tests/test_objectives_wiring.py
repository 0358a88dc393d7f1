"""Issue 5 wired into the sweep engine: ``--objectives`` + ``--scheduler moasha`` run MO-ASHA with
a multi-objective PrunedOptunaSearch and write/log the Pareto report; the silence stopper ends
silent trials and its reason reaches the Parquet table, the MLflow child tag and Optuna.

The two sweeps run the real classify trainable on real MNIST (smoke sizes) on the shared local
Ray; together about a minute on 2 cores.
"""

from __future__ import annotations

import glob
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from snnsearch.search.moasha import MultiObjectiveASHA
from snnsearch.search.schedulers import SchedulerSettings, build_scheduler
from snnsearch.spaces.space import load_space
from snnsearch.sweep.cli import build_parser, main
from snnsearch.sweep.settings import resolve_settings
from snnsearch.testing.sweeps import sweep_runs
from snnsearch.tracking import mlflow_logging as M
from snnsearch.tracking.summary import STOPPED, trial_status

REPO = Path(__file__).resolve().parents[2]
MNIST_SPACE = REPO / "search_spaces" / "mnist.yaml"


def _study_trials(sweep_dir: Path) -> list[Any]:
    """The Optuna trials of a finished sweep, from the searcher state Ray saved (a pickled
    ``PrunedOptunaSearch.__dict__`` holding the in-memory study)."""
    (path,) = glob.glob(str(sweep_dir / "searcher-state-*.pkl"))
    with open(path, "rb") as fh:
        state = pickle.load(fh)
    return list(state["_ot_study"].trials)


def test_settings_check_objectives_reference_and_silence_options() -> None:
    space = load_space(MNIST_SPACE)

    def resolve(**overrides: Any) -> Any:
        return resolve_settings(space, task="mnist", overrides=overrides)

    s = resolve(objectives="val_acc:max,energy_mj:min", pareto_ref="0.0,1.0", silence_from=2)
    assert s.objectives == (("val_acc", "max"), ("energy_mj", "min"))
    assert s.pareto_ref == (0.0, 1.0) and s.silence and s.silence_from == 2
    assert s.to_dict()["pareto_ref"] == [0.0, 1.0]
    assert not resolve(silence=False).silence
    args = vars(build_parser("mnist", MNIST_SPACE).parse_args(
        ["--no-silence", "--silence-from", "2", "--pareto-ref", "0,1"]))
    assert (args["silence"], args["silence_from"], args["pareto_ref"]) == (False, 2, "0,1")
    assert build_parser("mnist", MNIST_SPACE).parse_args([]).silence is None  # YAML/default wins
    with pytest.raises(ValueError, match="has 1 values for 2 objectives"):
        resolve(objectives="val_acc:max,energy_mj:min", pareto_ref="0.5")
    with pytest.raises(ValueError, match="do not include metric val_acc:max"):
        resolve(objectives="val_loss:min,energy_mj:min")
    with pytest.raises(ValueError, match="unknown silence_options"):
        resolve(silence_options={"silent_bellow": 0.1})
    assert isinstance(
        build_scheduler("moasha", SchedulerSettings(
            metric="val_acc", mode="max", max_t=4, objectives=s.objectives, seed=0)),
        MultiObjectiveASHA,
    )
    assert trial_status(errored=False, epochs_run=1, planned_epochs=4, stop_reason="silent") \
        == "silent"
    assert trial_status(errored=False, epochs_run=1, planned_epochs=4, stop_reason=None) == STOPPED


@pytest.mark.ray
@pytest.mark.slow
def test_moasha_sweep_writes_and_logs_the_pareto_report(
    ray_local: None, tmp_path: Path, mlflow_uri: str, data_root: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    # Concurrency 1 with a fixed seed makes arrival order, and so MO-ASHA's decisions, repeatable.
    # The spiking arms only: the same seeded draws as the space had before its ANN-twin arms
    # (ANN trials are never silent and dominate the smoke front, so nothing was left to stop).
    data = yaml.safe_load(MNIST_SPACE.read_text())
    data["space"]["model"] = {"categorical": ["fc", "csnn"]}
    for spec in data["space"].values():
        if "model" in spec.get("when", {}):
            spec["when"]["model"] = [m for m in spec["when"]["model"] if not m.endswith("_ann")]
    space = tmp_path / "mnist_snn.yaml"
    space.write_text(yaml.safe_dump(data, sort_keys=False))
    code = main("mnist", [
        "--space", str(space),
        "--smoke", "--objectives", "val_acc:max,energy_mj:min", "--scheduler", "moasha",
        "--pareto-ref", "0.0,1.0", "--concurrency", "1", "--seed", "0",
        "--storage", str(tmp_path), "--name", "mo", "--mlflow-uri", mlflow_uri,
        "--data-dir", str(data_root),
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Pareto front (val_acc:max,energy_mj:min)" in out and "hypervolume" in out
    sweep = tmp_path / "mo"
    assert {"trials.parquet", "pareto.parquet", "pareto.csv", "pareto.png"} <= {
        p.name for p in sweep.iterdir()}

    table = pd.read_parquet(sweep / "trials.parquet")
    assert (table["status"] != "errored").all(), table["error"].tolist()
    assert (table["status"] == STOPPED).sum() >= 1, table[["status", "epochs_run"]]
    assert (table.loc[table["status"] == STOPPED, "epochs_run"] < 2).all()
    front = pd.read_parquet(sweep / "pareto.parquet")
    completed = set(table.loc[table["status"] == "completed", "trial_id"])
    assert 1 <= len(front) <= len(completed) and set(front["trial_id"]) <= completed

    parent_id = (sweep / M.PARENT_ID_FILE).read_text().strip()
    parents, children = sweep_runs(mlflow_uri, parent_run_id=parent_id)
    parent = parents[0]
    assert parent.data.metrics["pareto_size"] == len(front)
    assert 0.0 < parent.data.metrics["pareto_hypervolume"] <= 1.0
    assert parent.data.tags["pareto.reference"] == "(0.0, 1.0)"
    assert parent.data.params["objectives"] == "[['val_acc', 'max'], ['energy_mj', 'min']]"
    files = {a.path for a in M.make_client(mlflow_uri).list_artifacts(parent_id, "pareto")}
    assert files == {"pareto/pareto.csv", "pareto/pareto.parquet", "pareto/pareto.png"}
    tags = {c.data.tags[M.TRIAL_TAG]: c.data.tags[M.STATUS_TAG] for c in children}
    assert tags == dict(zip(table["trial_id"], table["status"], strict=True))

    # The sampler saw a two-objective study.
    trials = _study_trials(sweep)
    assert len(trials) == len(table) and all(len(t.distributions) > 0 for t in trials)
    states = sorted((t.user_attrs["stop_reason"], t.state.name) for t in trials)
    # Multi-objective: a stopped trial is told COMPLETE with its truncated vector and the
    # violated constraint `unfinished` (its progress), so it stays off Optuna's front.
    for t in trials:
        unfinished = t.constraints.get("unfinished", 0.0)
        if t.user_attrs["stop_reason"] == "completed":
            assert t.state.name == "COMPLETE" and unfinished == 0.0, states
        else:
            assert unfinished > 0.0, states
    assert any(reason == "early_stopped" for reason, _ in states)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert all(len(t.values) == 2 for t in complete)


@pytest.mark.ray
@pytest.mark.slow
def test_silent_trials_are_stopped_and_recorded(
    ray_local: None, tmp_path: Path, mlflow_uri: str, data_root: Path,
) -> None:
    # A threshold no membrane reaches: the readout never spikes, whatever else is sampled.
    data = yaml.safe_load(MNIST_SPACE.read_text())
    for key in ("v_threshold", "model", "pretrain", "T"):
        data["space"].pop(key)
    data["fixed"].update(v_threshold=1000.0, model="fc", pretrain="none", T=2)
    for key, spec in list(data["space"].items()):  # csnn-only parameters: a `when` that can
        gate = spec.get("when", {}).get("model")   # never hold is refused before Ray starts
        if gate is not None and "fc" not in (gate if isinstance(gate, list) else [gate]):
            data["space"].pop(key)
    space = tmp_path / "silent.yaml"
    space.write_text(yaml.safe_dump(data, sort_keys=False))
    code = main("mnist", [
        "--space", str(space), "--smoke", "--samples", "2", "--scheduler", "fifo",
        "--max-epochs", "3", "--storage", str(tmp_path), "--name", "silent",
        "--mlflow-uri", mlflow_uri, "--data-dir", str(data_root),
    ])
    assert code == 0
    table = pd.read_parquet(tmp_path / "silent" / "trials.parquet")
    assert list(table["status"]) == ["silent", "silent"], table.T
    assert list(table["last/stop_reason"]) == ["silent", "silent"]
    assert list(table["epochs_run"]) == [1, 1]  # stopped at the first check, not after 3 epochs
    assert (table["last/output_firing_rate"] == 0.0).all()

    parent_id = (tmp_path / "silent" / M.PARENT_ID_FILE).read_text().strip()
    parents, children = sweep_runs(mlflow_uri, parent_run_id=parent_id)
    assert [c.data.tags[M.STOP_REASON_TAG] for c in children] == ["silent", "silent"]
    assert [c.data.tags[M.STATUS_TAG] for c in children] == ["silent", "silent"]
    assert parents[0].data.metrics["n_silent"] == 2
    for trial in _study_trials(tmp_path / "silent"):  # single-objective study
        assert trial.state.name == "PRUNED" and trial.user_attrs["stop_reason"] == "silent"
        silence = {k: v for k, v in trial.system_attrs.items() if k.endswith(":silence")}
        assert list(silence.values()) == [1.0]  # violated constraint: infeasible for TPE
