"""``sweeps/<task>.py --smoke`` on the shared local Ray with the real trainables and data:
ASHA stops at least one trial early, MLflow holds 1 parent + N children with the task's metrics
and figures, and ``trials.parquet`` has N rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from snnsearch.sweep.cli import main
from snnsearch.testing.sweeps import sweep_runs
from snnsearch.tracking import mlflow_logging as M

ENERGY_METRICS = {"energy_mj", "energy_compute_mj", "energy_memory_mj", "energy/int8_mj",
                  "energy/compute45_memory_mj", "energy_ratio/int8"}
CLASSIFY_METRICS = {"val_acc", "val_loss", "train_loss", "epoch_time_s",
                    "train_images_per_s", *ENERGY_METRICS}
SPIKE_METRICS = {"output_firing_rate", "silent_fraction"}  # spiking trials only (not ANN arms)
TASK_METRICS = {
    "mnist": CLASSIFY_METRICS,
    "fashion": CLASSIFY_METRICS,
    "depth": {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", *ENERGY_METRICS,
              "epoch_time_s", "train_images_per_s"},
}


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("task", ["mnist", "fashion", "depth"])
def test_smoke_sweep(
    task: str, ray_local: None, tmp_path: Path, mlflow_uri: str, data_root: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    data_dir = tmp_path / "synthetic" if task == "depth" else data_root
    code = main(task, ["--smoke", "--storage", str(tmp_path), "--name", f"smoke-{task}",
                       "--mlflow-uri", mlflow_uri, "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Sweep summary:" in out and "best trial" in out

    table = pd.read_parquet(tmp_path / f"smoke-{task}" / "trials.parquet")
    samples = len(table)
    assert samples >= 3
    energy = pd.read_csv(tmp_path / f"smoke-{task}" / "energy_sensitivity.csv")
    assert 1 <= len(energy) <= 5 and "breakeven_rate/int8" in energy
    # Cut short by ASHA or, since silence pruning is on by default, as a silent/saturated net.
    early = table["status"].isin(["stopped early", "silent", "saturated"])
    assert early.sum() >= 1, table[["status", "epochs_run"]]
    assert (table["status"] != "errored").all(), table["error"].tolist()

    parent_id = (tmp_path / f"smoke-{task}" / M.PARENT_ID_FILE).read_text().strip()
    parents, children = sweep_runs(mlflow_uri, parent_run_id=parent_id)
    assert len(parents) == 1 and len(children) == samples
    for child in children:
        assert TASK_METRICS[task] <= set(child.data.metrics), sorted(child.data.metrics)
        spiking = child.data.params.get("encoder", "ms_resnet") != "resnet" and not (
            child.data.params.get("model", "").endswith("_ann"))  # resnet, *_ann: ANN arms
        assert spiking == any(k.startswith("firing_rate/") for k in child.data.metrics)
        if spiking and task != "depth":
            assert SPIKE_METRICS <= set(child.data.metrics)
        assert "lr" in child.data.params
        assert child.data.tags[M.STATUS_TAG] in ("completed", "stopped early", "silent",
                                                  "saturated")
    client = M.make_client(mlflow_uri)
    figures = [a for c in children for a in client.list_artifacts(c.info.run_id,
                                                                   "figures/epoch_001")]
    assert any(a.path.endswith(".png") for a in figures)
    tables = client.list_artifacts(children[0].info.run_id, "energy/epoch_001")
    assert [a.path for a in tables] == ["energy/epoch_001/layers.csv"]
    if task == "depth":
        # No silence stopping for depth (the membrane shortcut still predicts): a spiking trial
        # completes.
        assert (table["status"] == "completed").any(), table[["status", "epochs_run"]]
        # At most two checkpoints per trial (the latest, and the best by the metric: the
        # selected epoch snnsearch.evaluate tests), so the sweep stays small.
        sweep = tmp_path / f"smoke-{task}"
        for trial_dir in {p.parent for p in sweep.glob("*/params.json")}:
            assert len(list(trial_dir.glob("checkpoint_*"))) <= 2, trial_dir
        written = sum(p.stat().st_size for p in sweep.rglob("*") if p.is_file())
        assert written <= samples * 2 * 32 * 2**20, written / 2**20
        _evaluate_best_trial_once(tmp_path / f"smoke-{task}", data_dir, mlflow_uri, capsys)


def _evaluate_best_trial_once(
    sweep_dir: Path, data_dir: Path, mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:
    """``python -m snnsearch.evaluate``: a test split of frames no trial trained or
    validated on (frame 0 of each drive) is evaluated with the best checkpoint and logged to its
    MLflow run; a test split sharing a frame with the val split is refused."""
    from snnsearch.depth.data.kitti import read_split, write_split
    from snnsearch.evaluate import main as evaluate

    val = read_split(data_dir / "splits" / "val_files.txt")
    drives = sorted({i.folder for i in read_split(data_dir / "splits" / "train_files.txt")}
                    | {i.folder for i in val})
    test = write_split(sweep_dir.parent / "test_files.txt",
                       [type(val[0])(d, 0) for d in drives])
    capsys.readouterr()
    assert evaluate([str(sweep_dir), "--split", str(test)]) == 0
    out = capsys.readouterr().out
    assert "test_abs_rel" in out and "logged to MLflow run" in out
    run_id = out.strip().rsplit(" ", 1)[-1]
    logged = M.make_client(mlflow_uri).get_run(run_id).data.metrics
    assert {"test_abs_rel", "test_a1", "test_rmse"} <= set(logged)
    leaky = write_split(sweep_dir.parent / "leaky.txt", val[:1])
    assert evaluate([str(sweep_dir), "--split", str(leaky), "--no-mlflow"]) == 2
    assert "in both the" in capsys.readouterr().err
