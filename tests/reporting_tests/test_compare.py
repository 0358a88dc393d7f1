"""The report comparison from a recorded trial table: per-cell mean ± std over the seeds that
finished, the difference to the report, the cost table, and ``report --compare`` writing
compare.md and logging it to the sweep's MLflow parent run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from snnsearch.report import main as report_main
from snnsearch.reporting.compare import COMPARE_FILE, compare, to_markdown
from snnsearch.reporting.results import write_table
from snnsearch.spaces.space import load_space
from snnsearch.tracking import mlflow_logging as M

REPO = Path(__file__).resolve().parents[2]
TABLE1 = REPO / "search_spaces" / "report" / "table1.yaml"
TABLE3 = REPO / "search_spaces" / "report" / "table3.yaml"


def _row(cell: str, seed: int, acc: float | None, *, status: str = "completed",
         time_s: float = 60.0, energy: float = 0.01) -> dict:
    """A trial-table row as ``reporting.results.row_from_result`` writes it."""
    row = {"trial_id": f"{cell}-{seed}-{status}", "status": status, "epochs_run": 3,
           "time_total_s": time_s, "config/cell": cell, "config/seed": seed,
           "last/energy_mj": energy, "last/test_acc": 0.5}
    if acc is not None:
        row["last/selected_test_acc"] = acc
    return row


RECORDED = [
    _row("fc_single_tau2", 0, 0.88, time_s=30.0, energy=0.002),
    _row("fc_single_tau2", 1, 0.89, time_s=40.0, energy=0.004),
    _row("fc_single_tau2", 2, 0.90, time_s=50.0, energy=0.006),
    # Not averaged: an errored trial and one cut short (they did not finish their epochs).
    _row("fc_single_tau2", 3, 0.10, status="errored"),
    _row("fc_multi_tau2", 0, 0.95, status="stopped early"),
    _row("csnn_tau4", 0, 0.985),
]


def test_cells_average_finished_seeds_and_differ_from_the_report() -> None:
    cells = {c.cell.name: c for c in compare(pd.DataFrame(RECORDED), load_space(TABLE1))}
    fc = cells["fc_single_tau2"]
    assert (fc.trials, fc.counted, fc.seeds) == (4, 3, (0, 1, 2))
    (row,) = fc.rows
    assert row.expected == pytest.approx(0.869)
    assert row.ours.mean == pytest.approx(0.89) and row.ours.std == pytest.approx(0.01)
    assert row.diff == pytest.approx(0.89 - 0.869)
    assert fc.time_s.mean == pytest.approx(40.0)
    assert fc.energy_mj.mean == pytest.approx(0.004) and fc.energy_mj.std == pytest.approx(0.002)
    # One seed: a mean without a std; no finished trial: nothing, counted as such.
    assert cells["csnn_tau4"].rows[0].ours.std is None
    assert cells["fc_multi_tau2"].counted == 0 and cells["fc_multi_tau2"].rows[0].diff is None
    assert cells["csnn_more_conv"].trials == 0


def test_markdown_shows_report_ours_and_difference() -> None:
    space = load_space(TABLE1)
    text = to_markdown(compare(pd.DataFrame(RECORDED), space), space, sweep="t1")
    line = next(x for x in text.splitlines() if x.startswith("| FC-SNN single layer"))
    assert line == ("| FC-SNN single layer, LIF τ=2 | test acc | 86.90 % | 89.00 ± 1.00 % | 3 | "
                    "+2.10 pp |")
    assert "| CSNN (2 conv blocks), LIF τ=4 | test acc | 99.48 % | 98.50 % | 1 | -0.98 pp |" in text
    assert "4 of 6 trials finished all epochs" in text
    assert "`fc_multi_tau2`: no finished trial yet (1 in the table)" in text
    assert "Energy protocol: energy_mj per image" in text


def test_depth_metrics_are_compared_in_their_units() -> None:
    rows = [{"trial_id": f"t{s}", "status": "completed", "time_total_s": 3600.0 * (s + 1),
             "config/cell": "resnet18_ann", "config/seed": s, "last/energy_mj": 36.9,
             **{f"last/{m}": v + 0.01 * s for m, v in
                {"abs_rel": 0.14, "sq_rel": 1.1, "rmse": 5.3, "rmse_log": 0.22, "a1": 0.83,
                 "a2": 0.94, "a3": 0.97}.items()}} for s in range(2)]
    space = load_space(TABLE3)
    text = to_markdown(compare(pd.DataFrame(rows), space), space)
    std = math.sqrt(2 * 0.005**2)
    assert f"| ResNet-18 ANN, no pretraining | abs_rel | 0.134 | 0.145 ± {std:.3f} | 2 | +0.011 |" \
        in text
    assert "| ResNet-18 ANN, no pretraining | 90.0 min | 9 h | 36.9 ± 0 | — | 259.5 |" in text


@pytest.mark.slow
def test_report_compare_writes_markdown_and_logs_to_the_parent_run(
    tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:
    sweep = tmp_path / "table1-run"
    sweep.mkdir()
    write_table(RECORDED, str(sweep))
    (sweep / "sweep.json").write_text(json.dumps(
        {"metric": "val_acc", "mode": "max", "space_path": str(TABLE1), "smoke": False,
         "mlflow_uri": mlflow_uri}))
    parent = M.SweepParentRun(tracking_uri=mlflow_uri, experiment="compare-test")
    run_id = parent.start(name="table1-run", params={}, space={})
    M.write_parent_id(str(sweep), run_id)

    assert report_main([str(sweep), "--compare"]) == 0
    out = capsys.readouterr().out
    assert "89.00 ± 1.00 %" in out
    assert "89.00 ± 1.00 %" in (sweep / COMPARE_FILE).read_text()
    client = M.make_client(mlflow_uri)
    assert COMPARE_FILE in [a.path for a in client.list_artifacts(run_id)]
    metrics = client.get_run(run_id).data.metrics
    assert metrics["compare/fc_single_tau2/test_acc_mean"] == pytest.approx(0.89)


def test_report_compare_refuses_a_search_sweep(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    sweep = tmp_path / "search"
    sweep.mkdir()
    write_table([{"trial_id": "a", "status": "completed", "best_val_acc": 0.5}], str(sweep))
    (sweep / "sweep.json").write_text(json.dumps(
        {"metric": "val_acc", "mode": "max",
         "space_path": str(REPO / "search_spaces" / "mnist.yaml")}))
    assert report_main([str(sweep), "--compare"]) == 2
    assert "not a report grid" in capsys.readouterr().err
    assert not (sweep / COMPARE_FILE).exists()


def test_html_sweep_report_section() -> None:
    from snnsearch.reporting.compare import report_section
    from snnsearch.reporting.page import to_html

    settings = {"space_path": str(TABLE1), "smoke": False, "name": "t1"}
    section = report_section(pd.DataFrame(RECORDED), settings)
    assert section is not None and section.id == "compare"
    metrics = section.blocks[0]
    assert ["FC-SNN single layer, LIF τ=2", "test acc", "86.90 %", "89.00 ± 1.00 %", 3,
            "+2.10 pp"] in metrics.rows
    assert "89.00 ± 1.00 %" in to_html("t", "", [section])
    assert report_section(pd.DataFrame([{"trial_id": "a", "status": "completed"}]),
                          settings) is None  # not a grid sweep
