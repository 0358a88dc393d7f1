"""The sweep report from a recorded sweep: a real 10-trial MNIST smoke sweep (MO-ASHA on
val_acc/energy_mj, silence pruning, ANN twins as arms) whose trials.parquet, history.parquet,
sweep.json and space.yaml are kept in ``data/mnist_smoke`` (44 KB)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from snnsearch.report import main as report_main
from snnsearch.reporting.history import load_history
from snnsearch.reporting.params import load_params
from snnsearch.reporting.results import load_table
from snnsearch.reporting.sweep_end import DESCRIPTION_LIMIT, description
from snnsearch.reporting.sweep_report import SweepReport, read_settings, write_report

RECORDED = Path(__file__).with_name("data") / "mnist_smoke"


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return Path(shutil.copytree(RECORDED, tmp_path / "mnist-rec"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, SweepReport]:
    """The recorded sweep's report, built once for the tests that only read it."""
    sweep = Path(shutil.copytree(RECORDED, tmp_path_factory.mktemp("built") / "mnist-rec"))
    table = load_table(str(sweep))
    params = load_params(str(sweep), table)
    report = write_report(str(sweep), table, load_history(str(sweep), table),
                          read_settings(str(sweep)), params=params)
    return sweep, params, report


def test_report_cli_writes_a_self_contained_page_summary_and_plots(
    sweep: Path, capsys: pytest.CaptureFixture
) -> None:
    assert report_main([str(sweep), "--top", "3"]) == 0
    assert f"report: {sweep / 'report.html'}" in capsys.readouterr().out
    html = (sweep / "report.html").read_text()
    # Offline: no script, no stylesheet or image fetched from anywhere; figures are inline.
    assert "<script" not in html and not re.search(r"(src|href)=\"https?://", html)
    assert html.count('src="data:image/png;base64,') >= 6
    for title in ("Best trials and counts by status", "Which hyperparameters matter",
                  "val_acc against energy, with ANN baselines", "Parallel coordinates",
                  "Learning curves", "Per-layer firing rates and energy of the best spiking",
                  "Errored trials"):
        assert title in html
    md = (sweep / "report.md").read_text()
    assert md.startswith("# Sweep report: mnist-rec") and "| status | trials |" in md
    plots = {p.name for p in (sweep / "plots").glob("*.png")}
    assert {"importance.png", "val_acc_vs_energy_mj.png", "parallel_coordinates.png",
            "val_acc_vs_params.png", "energy_mj_vs_params.png", "learning_curves.png",
            "hypervolume.png", "layer_firing_rates.png"} <= plots


def test_report_cli_takes_a_relative_sweep_path(
    sweep: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # pyarrow reads the table through a filesystem URI; a relative path once failed there.
    monkeypatch.chdir(sweep.parent)
    assert report_main([sweep.name, "--no-plots"]) == 0
    assert f"{sweep}: " in capsys.readouterr().out


def test_report_content_from_the_recorded_table(built: tuple) -> None:
    _, params, report = built
    # Both objectives ranked; importances are a distribution over the searched parameters.
    assert [i.objective for i in report.importances] == ["val_acc", "energy_mj"]
    for imp in report.importances:
        assert imp.values and all(v >= 0 for v in imp.values.values())
        assert sum(imp.values.values()) == pytest.approx(1.0)
        assert set(imp.values) <= {p.name for p in params}
    # The space's categorical model axis keeps all four arms, the ANN twins included.
    model = next(p for p in params if p.name == "model")
    assert model.categorical and model.choices == ("fc", "csnn", "fc_ann", "csnn_ann")
    lr = next(p for p in params if p.name == "lr")
    assert lr.log and not lr.categorical
    # The completed ANN trials are the baselines of the front table.
    assert "f9bea123 (ANN baseline)" in report.markdown
    assert "csnn_ann" in report.markdown and "fc_ann" in report.markdown


def test_errored_trials_are_grouped_by_message(sweep: Path) -> None:
    table = load_table(str(sweep))
    broken = table.iloc[:3].copy()  # three recorded rows marked errored by hand
    broken["trial_id"] = ["e1", "e2", "e3"]
    broken["status"] = "errored"
    broken["error"] = ["ValueError: lr exploded", "ValueError: lr exploded",
                       "RuntimeError: CUDA out of memory"]
    report = write_report(str(sweep), pd.concat([table, broken]), pd.DataFrame(
        columns=["trial_id", "training_iteration"]), read_settings(str(sweep)))
    md = report.markdown
    assert "| ValueError: lr exploded | 2 | e1, e2 |" in md
    assert "| RuntimeError: CUDA out of memory | 1 | e3 |" in md


def test_parent_description_fits_mlflow_tag_limit(built: tuple) -> None:
    _, _, report = built
    assert description(report, "text") == report.markdown  # short: the whole summary
    long = type(report)(report.html_path, report.md_path, report.markdown * 10,
                        report.importances, report.front)
    cut = description(long, "text")
    assert len(cut) < DESCRIPTION_LIMIT + 200 and cut.rstrip().endswith("report/report.md)")
