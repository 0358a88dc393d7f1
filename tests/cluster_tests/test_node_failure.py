"""Multi-node sweeps on a simulated GPU cluster: trials spread over both worker nodes with
fractional GPUs; killing one worker mid-sweep restarts its trials on the other node from their
last checkpoint (not epoch 0), and the sweep still completes with every trial and every epoch in
MLflow and in the Parquet table."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from snnsearch.spaces.space import load_space
from snnsearch.sweep.run import run_sweep
from snnsearch.sweep.settings import resolve_settings
from snnsearch.testing.sweeps import sweep_runs
from snnsearch.tracking import mlflow_logging as M

SAMPLES = 4
EPOCHS = 8
KILL_AFTER_EPOCH = 2


def _space(tmp_path: Path) -> Path:
    path = tmp_path / "nodes.yaml"
    path.write_text(yaml.safe_dump({
        "trainable": "snnsearch.testing.trainables:epochs_on_nodes",
        "experiment": "cluster-nodes",
        "fixed": {"sleep_s": 0.7},
        "space": {"x": {"float": [0.0, 1.0]}},
        "tune": {"metric": "val_acc", "mode": "max", "samples": SAMPLES, "sampler": "random",
                 "scheduler": "fifo", "max_epochs": EPOCHS, "concurrency": SAMPLES,
                 "cpus_per_trial": 1, "gpus_per_trial": 0.5, "max_failures": 3},
    }))
    return path


def _last_results(sweep_dir: Path) -> list[dict]:
    """The latest result of every trial that has reported (Tune's result.json lines)."""
    last = []
    for path in sweep_dir.glob("*/result.json"):
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        with contextlib.suppress(json.JSONDecodeError, IndexError):
            last.append(json.loads(lines[-1]))
    return last


def _kill_busiest_node(fake, sweep_dir: Path, killed: list) -> None:
    """Once every trial has checkpointed ``KILL_AFTER_EPOCH`` epochs, SIGKILLs the worker node
    running the most unfinished trials (a crashed machine, not a graceful drain)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        last = _last_results(sweep_dir)
        if len(last) == SAMPLES and all(r["epoch"] >= KILL_AFTER_EPOCH for r in last):
            running = Counter(r["node_id"] for r in last if r["epoch"] < EPOCHS)
            if not running:
                return
            victim = next(w for w in fake.workers if w.node_id == running.most_common(1)[0][0])
            fake.cluster.remove_node(victim, allow_graceful=False)
            killed.append(victim.node_id)
            return
        time.sleep(0.1)


@pytest.mark.ray
@pytest.mark.slow
def test_killed_node_trials_resume_elsewhere_from_their_checkpoint(
    fake_gpu_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The killer watches result.json on the storage, which Ray syncs with each experiment
    # snapshot (period >= 10 s by default since checkpoints are trimmed by our callback): every
    # second here, so it sees the trials' epochs while they still run.
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "1")
    space = load_space(_space(tmp_path))
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = resolve_settings(space, task="nodes", overrides={
        "storage": str(fake_gpu_cluster.shared), "name": "kill", "mlflow_uri": mlflow_uri})
    sweep_dir = Path(settings.sweep_dir)
    killed: list[str] = []
    killer = threading.Thread(target=_kill_busiest_node, daemon=True,
                              args=(fake_gpu_cluster, sweep_dir, killed))
    killer.start()
    outcome = run_sweep(settings, space)
    killer.join(5)
    assert killed, "no worker node was killed mid-sweep (trials finished too fast?)"
    victim = killed[0]

    table = pd.read_parquet(outcome.table_path)
    assert len(table) == SAMPLES
    assert (table["status"] == "completed").all(), table[["trial_id", "status", "error"]]
    assert (table["epochs_run"] == EPOCHS).all()

    histories = {r.metrics["trial_id"]: r.metrics_dataframe for r in _results(sweep_dir)}
    first = {tid: h.sort_values("timestamp").iloc[0] for tid, h in histories.items()}
    assert {row["node_id"] for row in first.values()} == {w.node_id for w in
                                                         fake_gpu_cluster.workers}
    assert all(row["gpu_share"] == 0.5 for row in first.values())
    # Trials that had not finished when their node died must continue elsewhere from their
    # last checkpoint: never from epoch 0, never with a missing or repeated-from-scratch epoch.
    moved = {tid: h for tid, h in histories.items()
             if victim in set(h["node_id"]) and h[h["node_id"] == victim]["epoch"].max() < EPOCHS}
    assert moved, "the killed node held no unfinished trial"
    for tid, history in moved.items():
        after = history[history["node_id"] != victim]
        assert len(after), f"{tid} never ran again after its node died"
        restart = after.sort_values("timestamp").iloc[0]
        assert restart["restored_from"] >= KILL_AFTER_EPOCH, restart.to_dict()
        assert restart["epoch"] == restart["restored_from"] + 1 > 1
        assert set(history["epoch"]) == set(range(1, EPOCHS + 1))

    parents, children = sweep_runs(mlflow_uri, parent_run_id=outcome.parent_run_id)
    assert len(parents) == 1 and len(children) == SAMPLES
    client = M.make_client(mlflow_uri)
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags[M.STATUS_TAG] == "completed"
        steps = {m.value for m in client.get_metric_history(child.info.run_id, "epoch")}
        assert steps == set(map(float, range(1, EPOCHS + 1)))


def _results(sweep_dir: Path):
    from ray.tune import ExperimentAnalysis, ResultGrid

    return ResultGrid(ExperimentAnalysis(str(sweep_dir), default_metric="val_acc",
                                         default_mode="max"))
