"""End-to-end sweeps of the testing trainable on the shared local Ray session: ASHA stops trials,
a failing trial is logged as errored with its message, MLflow (a real ``mlflow server`` process)
holds 1 parent + N nested children, Parquet has N rows, and the report CLI reads it back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from snnsearch.search.searchers import build_searcher
from snnsearch.spaces.space import load_space
from snnsearch.sweep.cli import main
from snnsearch.testing.sweeps import QUADRATIC_SPACE, mlflow_server, sweep_runs
from snnsearch.tracking import mlflow_logging as M

SAMPLES = 8
SEED = 3


def _space_with_failures(tmp_path: Path) -> Path:
    """The quadratic space where every ``neuron: if`` trial raises at epoch 2 (with ASHA's
    first rung at epoch 2 none of them can be stopped before it fails)."""
    data = yaml.safe_load(QUADRATIC_SPACE.read_text())
    data["space"]["fail_epoch"] = {"categorical": [2], "when": {"neuron": "if"}}
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _expected_failures(space_path: Path) -> int:
    """How many of the seeded random sampler's suggestions pick ``neuron: if``."""
    searcher = build_searcher(space=load_space(space_path).define_by_run(), sampler="random",
                              seed=SEED, metric="val_acc", mode="max")
    return sum(searcher.suggest(f"t{i}")["neuron"] == "if" for i in range(SAMPLES))


@pytest.mark.ray
@pytest.mark.slow
def test_sweep_logs_nested_runs_to_a_real_mlflow_server(
    ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    space_path = _space_with_failures(tmp_path)
    failures = _expected_failures(space_path)
    assert 0 < failures < SAMPLES  # the seed exercises both kinds of trial
    with mlflow_server(tmp_path) as uri:
        code = main("quadratic", [
            "--space", str(space_path), "--storage", str(tmp_path / "ray"), "--name", "engine",
            "--samples", str(SAMPLES), "--sampler", "random", "--seed", str(SEED),
            "--scheduler", "asha", "--max-epochs", "4", "--grace", "2", "--concurrency", "2",
            "--mlflow-uri", uri,
        ])
        out = capsys.readouterr().out
        assert code == 0, out
        parent_id = (tmp_path / "ray" / "engine" / M.PARENT_ID_FILE).read_text().strip()
        parents, children = sweep_runs(uri, parent_run_id=parent_id)
        assert len(parents) == 1 and len(children) == SAMPLES
        status = {c.data.tags[M.TRIAL_TAG]: c.data.tags[M.STATUS_TAG] for c in children}
        assert sum(s == "errored" for s in status.values()) == failures
        assert sum(s == "stopped early" for s in status.values()) >= 1
        errored = [c for c in children if c.data.tags[M.STATUS_TAG] == "errored"]
        assert all("deliberate failure at epoch 2" in c.data.tags[M.ERROR_TAG] for c in errored), [
            c.data.tags.get(M.ERROR_TAG) for c in errored]
        assert all({"val_acc", "energy_mj", "firing_rate/layer1"} <= set(c.data.metrics)
                   for c in children)
        assert all("x" in c.data.params and "epochs" in c.data.params for c in children)
        done = next(c for c in children if c.data.tags[M.STATUS_TAG] == "completed")
        client = M.make_client(uri)
        figures = [a.path for a in client.list_artifacts(done.info.run_id, "figures/epoch_004")]
        assert figures == ["figures/epoch_004/firing_rates.png"]
        parent = parents[0]
        assert parent.data.metrics["n_errored"] == failures
        assert parent.data.params["sampler"] == "random"
        parent_files = {a.path for a in client.list_artifacts(parent_id)}
        assert {"space.yaml", "summary.json", "summary.txt", "trials.parquet"} <= parent_files
        # The report is written when the sweep ends and travels with the parent run.
        report_files = {a.path for a in client.list_artifacts(parent_id, "report")}
        assert {"report/report.html", "report/report.md"} <= report_files
        assert parent.data.tags[M.NOTE_TAG].startswith("# Sweep report: engine")

    assert "Sweep summary: 8 trials" in out and "best trial" in out and "GPU-hours" in out
    assert f"report: {tmp_path / 'ray' / 'engine' / 'report.html'}" in out
    assert out.splitlines()[-1].startswith("see it in MLflow: open http")  # how to look at it
    table = pd.read_parquet(tmp_path / "ray" / "engine" / "trials.parquet")
    assert len(table) == SAMPLES
    assert dict(zip(table["trial_id"], table["status"], strict=True)) == status
    assert {"config/x", "best_val_acc", "last/val_acc", "epochs_run", "time_total_s"} <= set(table)
    stopped = table[table["status"] == "stopped early"]
    assert (stopped["epochs_run"] < 4).all()

    from snnsearch.report import main as report_main

    assert report_main([str(tmp_path / "ray" / "engine"), "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "best_val_acc" in printed
    plots = sorted(p.name for p in (tmp_path / "ray" / "engine" / "plots").glob("*.png"))
    assert "val_acc_vs_energy_mj.png" in plots and "val_acc_vs_params.png" in plots


@pytest.mark.ray
def test_existing_sweep_needs_resume_and_resume_needs_a_sweep(
    ray_local: None, tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:
    args = ["--space", str(QUADRATIC_SPACE), "--storage", str(tmp_path),
            "--mlflow-uri", mlflow_uri]
    assert main("quadratic", [*args, "--name", "missing", "--resume"]) == 2
    assert "no sweep to resume" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "tuner.pkl").write_bytes(b"")
    assert main("quadratic", [*args, "--name", "taken"]) == 2
    assert "already holds a sweep; pass --resume" in capsys.readouterr().err
