"""Table 3's grid (search_spaces/report/table3.yaml) as a smoke run on synthetic scenes: every
cell trains through the real depth trainable and engine, and the run ends with the comparison
beside the report's numbers (compare.md, MLflow parent run)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from snnsearch.constants import DEPTH_METRICS
from snnsearch.reporting.compare import COMPARE_FILE
from snnsearch.spaces.space import load_space
from snnsearch.sweep.cli import main
from snnsearch.tracking import mlflow_logging as M

TABLE3 = Path(__file__).resolve().parents[2] / "search_spaces" / "report" / "table3.yaml"


@pytest.mark.ray
@pytest.mark.slow
def test_table3_smoke_on_synthetic_scenes(
    ray_local: None, tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:
    code = main("depth", ["--space", str(TABLE3), "--smoke", "--storage", str(tmp_path),
                          "--name", "t3", "--mlflow-uri", mlflow_uri,
                          "--data-dir", str(tmp_path / "synthetic")])
    out = capsys.readouterr().out
    assert code == 0, out
    cells = [c.name for c in load_space(TABLE3).grid.cells]
    table = pd.read_parquet(tmp_path / "t3" / "trials.parquet")
    assert sorted(table["config/cell"]) == sorted(cells)  # each cell once (smoke: one seed)
    assert (table["status"] == "completed").all(), table[["config/cell", "status", "error"]]
    assert (table["config/encoder"] == "resnet").sum() == 1
    assert sorted(table["config/T"].dropna()) == [2, 2, 2, 20]
    for metric in DEPTH_METRICS:
        assert all(math.isfinite(v) for v in table[f"last/{metric}"]), metric

    compared = (tmp_path / "t3" / COMPARE_FILE).read_text()
    assert "## Table 3" in compared and compared in out
    rows = [line for line in compared.splitlines() if line.startswith("| ") and " | 1 | " in line]
    assert len(rows) == len(cells) * len(DEPTH_METRICS)
    assert "| ResNet-18 ANN, no pretraining | abs_rel | 0.134 |" in compared
    # The sweep's own report opens with the comparison (it once failed on the stored space.yaml).
    assert (tmp_path / "t3" / "report.html").is_file()
    assert "## Table 3" in (tmp_path / "t3" / "report.md").read_text()
    client = M.make_client(mlflow_uri)
    parent_id = (tmp_path / "t3" / M.PARENT_ID_FILE).read_text().strip()
    assert COMPARE_FILE in [a.path for a in client.list_artifacts(parent_id)]
