"""Trial table rows from Tune ``Result`` objects, Parquet round trip, the summary, and the report
CLI — all fed by hand-made results (no Ray cluster), as syne-tune tests its schedulers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from ray.tune import Result

from snnsearch.report import main as report_main
from snnsearch.reporting.results import load_table, rows_from_results, to_arrow, write_table
from snnsearch.tracking.summary import format_summary, summarize, trial_status


def _result(trial_id: str, accs: list[float], *, epochs: int = 3, model: str = "csnn",
            error: Exception | None = None) -> Result:
    history = pd.DataFrame({
        "training_iteration": range(1, len(accs) + 1), "val_acc": accs,
        "energy_mj": [0.1 * (i + 1) for i in range(len(accs))],
    })
    last = {**history.iloc[-1].to_dict(), "trial_id": trial_id, "time_total_s": 2.0 * len(accs),
            "config": {"epochs": epochs, "model": model, "lr": 1e-3}} if accs else {}
    if last:
        last["training_iteration"] = int(last["training_iteration"])
    return Result(metrics=last, checkpoint=None, error=error,
                  path=f"/tmp/sweep/fn_{trial_id}_1_lr=0.001", metrics_dataframe=history)


def _results() -> list[Result]:
    return [
        _result("aaa", [0.5, 0.7, 0.6]),
        _result("bbb", [0.4], model="spikformer"),
        _result("ccc", [0.3, 0.2], error=RuntimeError("Traceback\nValueError: lr exploded")),
    ]


def test_rows_carry_status_best_last_and_config() -> None:
    rows = {r["trial_id"]: r for r in rows_from_results(_results(), metric="val_acc", mode="max")}
    assert rows["aaa"]["status"] == "completed" and rows["aaa"]["best_val_acc"] == 0.7
    assert rows["aaa"]["best_epoch"] == 2 and rows["aaa"]["last/val_acc"] == 0.6
    assert rows["bbb"]["status"] == "stopped early" and rows["bbb"]["epochs_run"] == 1
    assert rows["ccc"]["status"] == "errored"
    assert rows["ccc"]["error"] == "ValueError: lr exploded"
    assert rows["aaa"]["config/model"] == "csnn" and rows["aaa"]["time_total_s"] == 6.0
    low = {r["trial_id"]: r for r in rows_from_results(_results(), metric="val_acc", mode="min")}
    assert low["aaa"]["best_val_acc"] == 0.5


def test_parquet_round_trip_and_mixed_columns(tmp_path: Path) -> None:
    rows = rows_from_results(_results(), metric="val_acc", mode="max")
    rows[0]["config/pretrain"] = "none"
    rows[1]["config/pretrain"] = 3  # mixed str/int: stored as strings, not a pyarrow error
    write_table(rows, str(tmp_path))
    table = load_table(str(tmp_path))
    assert len(table) == 3 and list(table["trial_id"]) == ["aaa", "bbb", "ccc"]
    assert table["config/pretrain"].tolist()[:2] == ["none", "3"]
    assert to_arrow([]).num_rows == 0


def test_summary_counts_best_and_gpu_hours() -> None:
    rows = rows_from_results(_results(), metric="val_acc", mode="max")
    summary = summarize(rows, metric="val_acc", mode="max", gpus_per_trial=0.25,
                        searched=["model", "lr"])
    assert summary["counts"] == {"completed": 1, "stopped early": 1, "silent": 0,
                                 "saturated": 0, "errored": 1, "interrupted": 0}
    assert summary["best_trial_id"] == "aaa" and summary["best_value"] == 0.7
    assert summary["total_trial_time_s"] == pytest.approx(12.0)
    assert summary["gpu_hours"] == pytest.approx(12.0 * 0.25 / 3600)
    assert summary["best_params"] == {"model": "csnn", "lr": 1e-3}
    text = format_summary(summary)
    assert "3 trials (1 completed, 1 stopped early, 1 errored)" in text
    assert "best trial aaa: val_acc = 0.7000" in text and "params: lr=0.001, model=csnn" in text


@pytest.mark.parametrize(
    ("errored", "ran", "planned", "status"),
    [(False, 3, 3, "completed"), (False, 1, 3, "stopped early"), (True, 3, 3, "errored"),
     (False, None, 3, "stopped early"), (False, 2, None, "completed")],
)
def test_trial_status(errored: bool, ran: int | None, planned: int | None, status: str) -> None:
    assert trial_status(errored=errored, epochs_run=ran, planned_epochs=planned) == status


def test_report_prints_top_trials_and_writes_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_table(rows_from_results(_results(), metric="val_acc", mode="max"), str(tmp_path))
    (tmp_path / "sweep.json").write_text(json.dumps({"metric": "val_acc", "mode": "max"}))
    assert report_main([str(tmp_path), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "3 trials" in out and "top 2 by val_acc (max)" in out
    assert out.index("aaa") < out.index("bbb") and "ccc" not in out.split("top 2")[1]
    plots = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"val_acc_vs_energy_mj.png", "val_acc_vs_params.png"} <= plots
    assert (tmp_path / "report.html").is_file()


def test_report_without_sweep_json_asks_for_the_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert report_main([str(tmp_path)]) == 2
    assert "pass --metric and --mode" in capsys.readouterr().err


def test_report_on_a_missing_directory_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert report_main([str(tmp_path / "no-such-sweep")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such sweep directory" in err and "no-such-sweep" in err
