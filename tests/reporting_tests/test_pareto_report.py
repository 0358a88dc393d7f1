"""Pareto report from a hand-made trial table: front, files, plot, MLflow upload."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from snnsearch.reporting.pareto_report import (
    log_pareto_report,
    pareto_front,
    write_pareto_report,
)
from snnsearch.reporting.results import to_arrow

OBJ = "val_acc:max,energy_mj:min"


def _row(tid: str, acc: float, mj: float, T: int, D: int | None, **extra: object) -> dict:
    row = {"trial_id": tid, "status": "completed", "epochs_run": 4, "config/T": T,
           "config/D": D, "config/lr": 1e-3, "last/val_acc": acc, "last/energy_mj": mj}
    row.update(extra)
    return row


@pytest.fixture
def table() -> pd.DataFrame:
    rows = [
        _row("a", 0.98, 4.0, 8, 4),
        _row("b", 0.96, 1.0, 4, 4),
        _row("c", 0.90, 0.5, 2, None),
        _row("d", 0.95, 2.0, 4, 2),     # dominated by b
        _row("e", 0.97, 4.5, 8, 2),     # dominated by a
        _row("silent", 0.10, 0.0, 1, None, **{"last/stop_reason": "silent"}),
        _row("cut", 0.99, 0.1, 2, 2, status="stopped early", epochs_run=1),
        _row("nan", math.nan, 1.0, 4, 4),
    ]
    # Through the real table writer so dtypes match a sweep's trials.parquet.
    return to_arrow(rows).to_pandas()


def test_front_excludes_silent_stopped_and_nan(table: pd.DataFrame) -> None:
    front, n_cand = pareto_front(table, OBJ)
    assert n_cand == 5  # a, b, c, d, e
    assert front["trial_id"].tolist() == ["a", "b", "c"]  # best accuracy first
    assert front["crowding_distance"].tolist()[1] == pytest.approx(
        (0.98 - 0.90) / 0.08 + (4.0 - 0.5) / 3.5
    )
    everything, n_all = pareto_front(table, OBJ, statuses=None)
    # With every status allowed the truncated trial dominates; silent still never counts.
    assert n_all == 6 and "cut" in everything["trial_id"].tolist()
    assert "silent" not in everything["trial_id"].tolist()


def test_write_report_files_and_hypervolume(table: pd.DataFrame, tmp_path: Path) -> None:
    report = write_pareto_report(table, OBJ, str(tmp_path), reference=(0.0, 5.0))
    # Sweep from the most accurate: 0.98*(5-4) + 0.96*(4-1) + 0.90*(1-0.5).
    assert report.hypervolume == pytest.approx(0.98 * 1 + 0.96 * 3 + 0.90 * 0.5)
    assert report.reference == (0.0, 5.0) and report.candidates == 5
    saved = pd.read_parquet(tmp_path / "pareto.parquet")
    assert saved["trial_id"].tolist() == ["a", "b", "c"]
    assert {"val_acc", "energy_mj", "config/T", "config/D", "crowding_distance"} <= set(saved)
    assert pd.read_csv(tmp_path / "pareto.csv")["trial_id"].tolist() == ["a", "b", "c"]
    png = (tmp_path / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_depth_objectives_and_bare_columns(tmp_path: Path) -> None:
    df = pd.DataFrame({"abs_rel": [0.12, 0.15, 0.13], "energy_mj": [40.0, 10.0, 50.0],
                       "T": [4, 2, 4], "D": [4, 4, 2], "status": ["completed"] * 3})
    report = write_pareto_report(df, "abs_rel:min,energy_mj:min", str(tmp_path / "sweep"))
    assert report.front["abs_rel"].tolist() == [0.12, 0.15] and report.hypervolume is None
    assert (tmp_path / "sweep" / "pareto.png").exists()


def test_errors_name_the_problem(table: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no column 'last/abs_rel'"):
        pareto_front(table, "abs_rel:min,energy_mj:min")
    with pytest.raises(ValueError, match="one value per objective"):
        write_pareto_report(table, OBJ, str(tmp_path), reference=(0.0,))


@pytest.mark.slow
def test_log_to_mlflow_parent_run(table: pd.DataFrame, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("sweep", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(exp).info.run_id
    report = write_pareto_report(table, OBJ, str(tmp_path / "sweep"), reference=(0.0, 5.0))
    log_pareto_report(report, client=client, run_id=run_id)
    names = sorted(a.path for a in client.list_artifacts(run_id, "pareto"))
    assert names == ["pareto/pareto.csv", "pareto/pareto.parquet", "pareto/pareto.png"]
    run = client.get_run(run_id)
    assert run.data.metrics["pareto_size"] == 3
    assert run.data.metrics["pareto_hypervolume"] == pytest.approx(report.hypervolume)
    assert run.data.tags["pareto.reference"] == "(0.0, 5.0)"
