"""Faults inside trials, through the real sweep driver (``snnsearch.sweep.cli.main``) on the
shared local Ray session: an out-of-memory error and a diverging (NaN) trial each cost only that
trial, with a one-line error; an MLflow server restarting mid-sweep costs no trial and no metric,
and one still down at the end costs no trial, with the unlogged metric values counted."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from snnsearch.search.searchers import build_searcher
from snnsearch.spaces.space import load_space
from snnsearch.sweep.cli import main
from snnsearch.testing.sweeps import MlflowServer, sweep_runs
from snnsearch.testing.trainables import OOM_MESSAGE
from snnsearch.tracking import mlflow_logging as M


def _seed_covering(space_path: Path, key: str, samples: int) -> int:
    """The first seed whose random-sampler suggestions take every value of categorical ``key``
    (so the sweep holds both faulty and healthy trials, deterministically)."""
    space = load_space(space_path)
    values = set(next(p for p in space.params if p.name == key).to_dict()["categorical"])
    for seed in range(50):
        searcher = build_searcher(space=space.define_by_run(), sampler="random", seed=seed,
                                  metric="val_acc", mode="max")
        if {searcher.suggest(f"t{i}")[key] for i in range(samples)} == values:
            return seed
    raise AssertionError(f"no seed below 50 covers {values}")


def _sweep(space: Path, tmp_path: Path, seed: int, mlflow_uri: str) -> tuple[int, str]:
    argv = ["--space", str(space), "--storage", str(tmp_path / "ray"), "--name", "faults",
            "--sampler", "random", "--seed", str(seed), "--mlflow-uri", mlflow_uri]
    return main("faults", argv), str(tmp_path / "ray" / "faults")


@pytest.mark.ray
def test_out_of_memory_errors_only_that_trial_with_a_one_line_error(
    ray_session: None, tmp_path: Path, write_space: Any, fault_trainable: str, mlflow_uri: str
) -> None:
    samples = 3
    space = write_space(fault_trainable, fixed={"fault_epoch": 2},
                        space={"fault": {"categorical": ["none", "oom"]},
                               "x": {"float": [0.0, 1.0]}},
                        tune={"samples": samples, "scheduler": "fifo", "max_epochs": 2,
                              "concurrency": 2, "metric": "val_acc", "mode": "max"})
    seed = _seed_covering(space, "fault", samples)
    code, sweep_dir = _sweep(space, tmp_path, seed, mlflow_uri)
    assert code == 0

    table = pd.read_parquet(Path(sweep_dir) / "trials.parquet")
    assert len(table) == samples
    oom = table[table["config/fault"] == "oom"]
    healthy = table[table["config/fault"] == "none"]
    assert len(oom) and len(healthy)
    assert (oom["status"] == "errored").all() and (oom["epochs_run"] == 1).all()
    for error in oom["error"]:
        assert "\n" not in error and "OutOfMemoryError" in error and OOM_MESSAGE[:30] in error
    assert (healthy["status"] == "completed").all() and (healthy["epochs_run"] == 2).all()

    parent_id = (Path(sweep_dir) / M.PARENT_ID_FILE).read_text().strip()
    _, children = sweep_runs(mlflow_uri, parent_run_id=parent_id)
    assert len(children) == samples
    for child in children:
        if child.data.params["fault"] == "oom":
            assert child.info.status == "FAILED"
            assert "OutOfMemoryError" in child.data.tags[M.ERROR_TAG]
            assert child.data.metrics["epoch"] == 1  # the epoch before the crash is kept
        else:
            assert child.info.status == "FINISHED" and child.data.metrics["epoch"] == 2


@pytest.fixture(scope="module")
def nan_sweep(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path,
              ray_session: None, mlflow_uri: str) -> dict[str, Any]:
    """One real classification sweep with a healthy trial and one whose loss turns NaN in the
    first epoch (an ANN twin trained with SGD at lr=1e38: its logits overflow)."""
    import yaml

    tmp = tmp_path_factory.mktemp("nan")
    space = tmp / "nan.yaml"
    space.write_text(yaml.safe_dump({
        "trainable": "classify", "experiment": "faults",
        "fixed": {"dataset": "mnist", "data_dir": str(mnist_root), "model": "fc",
                  "neuron": "relu", "loss": "ce", "optimizer": "sgd", "train_subset": 300,
                  "val_size": 200, "hidden_width": 32, "batch_size": 64, "energy_images": 8,
                  "device": "cpu", "figures": False, "seed": 0},
        "space": {"lr": {"categorical": [0.05, 1.0e38]}},
        "tune": {"samples": 2, "scheduler": "fifo", "max_epochs": 2, "concurrency": 2,
                 "metric": "val_acc", "mode": "max"},
    }))
    code, sweep_dir = _sweep(space, tmp, _seed_covering(space, "lr", 2), mlflow_uri)
    table = pd.read_parquet(Path(sweep_dir) / "trials.parquet")
    return {"code": code, "table": table}


@pytest.mark.ray
def test_a_diverging_trial_does_not_poison_the_sweep(nan_sweep: dict[str, Any]) -> None:
    table = nan_sweep["table"].set_index("config/lr")
    assert nan_sweep["code"] == 0 and len(table) == 2
    healthy = table.loc[0.05]
    assert healthy["status"] == "completed" and healthy["epochs_run"] == 2
    assert pd.notna(healthy["best_val_acc"]) and healthy["best_val_acc"] > 0.2
    diverged = table.loc[1.0e38]
    # The NaN is recorded as NaN (never silently replaced) or the trial errored; either way
    # the diverged trial cannot be reported as the best.
    assert diverged["status"] == "errored" or pd.isna(diverged["last/train_loss"])
    assert not diverged["best_val_acc"] >= healthy["best_val_acc"]


@pytest.mark.ray
def test_a_diverging_trial_fails_with_a_one_line_error(nan_sweep: dict[str, Any]) -> None:
    diverged = nan_sweep["table"].set_index("config/lr").loc[1.0e38]
    assert diverged["status"] == "errored" and diverged["epochs_run"] == 0
    assert "FloatingPointError" in diverged["error"] and "lower lr" in diverged["error"]


def _bounce_after_first_checkpoints(server: Any, sweep_dir: Path, down_s: float | None,
                                    events: dict[str, threading.Event],
                                    restarted: list[Any]) -> None:
    """Kills ``server`` once a trial has checkpointed; restarts it on the same port and store
    ``down_s`` later (None: leaves it down)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(sweep_dir.glob("*/checkpoint_000001")):
            server.stop()
            events["killed"].set()
            if down_s is None:
                return
            time.sleep(down_s)
            restarted.append(MlflowServer(server.workdir, artifact_root=server.workdir
                                          / "artifacts", port=server.port))
            events["back"].set()
            return
        time.sleep(0.1)


def _faulty_sweep(space: Path, tmp_path: Path, name: str, server: Any, down_s: float | None,
                  ) -> tuple[int, dict[str, threading.Event], list[Any]]:
    events = {"killed": threading.Event(), "back": threading.Event()}
    restarted: list[Any] = []
    bouncer = threading.Thread(target=_bounce_after_first_checkpoints, daemon=True, args=(
        server, tmp_path / "ray" / name, down_s, events, restarted))
    bouncer.start()
    try:
        code = main("faults", ["--space", str(space), "--storage", str(tmp_path / "ray"),
                               "--name", name, "--sampler", "random", "--seed", "0",
                               "--mlflow-uri", server.uri])
        bouncer.join(60)
    finally:
        for again in restarted:
            again.stop()
    return code, events, restarted


@pytest.mark.ray
@pytest.mark.slow
def test_mlflow_server_restarting_mid_sweep_loses_no_trial_and_no_metric(
    ray_session: None, tmp_path: Path, write_space: Any, fault_trainable: str,
    killable_mlflow: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture,
) -> None:
    samples, epochs = 3, 4
    space = write_space(fault_trainable, fixed={"sleep_s": 0.4}, space={"x": {"float": [0, 1]}},
                        tune={"samples": samples, "scheduler": "fifo", "max_epochs": epochs,
                              "concurrency": 2, "metric": "val_acc", "mode": "max"})
    with caplog.at_level(logging.WARNING):
        code, events, _ = _faulty_sweep(space, tmp_path, "bounce", killable_mlflow, 4.0)
    assert events["killed"].is_set() and events["back"].is_set()
    out = capsys.readouterr().out
    assert code == 0 and f"Sweep summary: {samples} trials ({samples} completed" in out
    assert "could not be logged" not in out
    # Every epoch of every trial is in the Parquet table...
    table = pd.read_parquet(tmp_path / "ray" / "bounce" / "trials.parquet")
    assert len(table) == samples and (table["epochs_run"] == epochs).all()
    # ...and in MLflow: the writer held and retried what the dead server refused.
    store = f"sqlite:///{killable_mlflow.workdir / 'server.db'}"
    parent_id = (tmp_path / "ray" / "bounce" / M.PARENT_ID_FILE).read_text().strip()
    _, children = sweep_runs(store, parent_run_id=parent_id)
    assert len(children) == samples
    client = M.make_client(store)
    for child in children:
        history = client.get_metric_history(child.info.run_id, "val_acc")
        assert sorted(m.step for m in history) == list(range(1, epochs + 1))
        assert child.info.status == "FINISHED"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("MLflow write failed" in w for w in warnings), warnings


@pytest.mark.ray
@pytest.mark.slow
def test_mlflow_server_down_at_the_end_is_counted_in_the_summary(
    ray_session: None, tmp_path: Path, write_space: Any, fault_trainable: str,
    killable_mlflow: Any, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNNSEARCH_MLFLOW_FLUSH_S", "3")  # the bounded wait at the end
    samples, epochs = 2, 3
    space = write_space(fault_trainable, fixed={"sleep_s": 0.3}, space={"x": {"float": [0, 1]}},
                        tune={"samples": samples, "scheduler": "fifo", "max_epochs": epochs,
                              "concurrency": 2, "metric": "val_acc", "mode": "max"})
    code, events, _ = _faulty_sweep(space, tmp_path, "down", killable_mlflow, None)
    assert events["killed"].is_set()
    out = capsys.readouterr().out
    assert code == 0 and f"Sweep summary: {samples} trials ({samples} completed" in out
    table = pd.read_parquet(tmp_path / "ray" / "down" / "trials.parquet")
    assert len(table) == samples and (table["epochs_run"] == epochs).all()
    line = next(ln for ln in out.splitlines() if "could not be logged" in ln)
    unlogged = int(re.search(r"MLflow: (\d+) metric values", line).group(1))
    # The count is exact: what the dead server's store lacks, value for value.
    store = f"sqlite:///{killable_mlflow.workdir / 'server.db'}"
    parent_id = (tmp_path / "ray" / "down" / M.PARENT_ID_FILE).read_text().strip()
    _, children = sweep_runs(store, parent_run_id=parent_id)
    client = M.make_client(store)
    logged = 0
    for child in children:
        for key in child.data.metrics:
            if not key.startswith(M.KEY_SECTION):
                logged += len(client.get_metric_history(child.info.run_id, key))
    last = {c.removeprefix("last/"): 1.0 for c in table.columns if c.startswith("last/")
            and pd.api.types.is_numeric_dtype(table[c])
            and not pd.api.types.is_bool_dtype(table[c])}
    per_result = len(M.numeric_metrics(last))  # the values one result carries to MLflow
    assert unlogged > 0 and logged + unlogged == samples * epochs * per_result
