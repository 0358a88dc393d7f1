"""Report, evaluate and warm-start read a sweep directory as data only (``sweep.json``,
``trials.parquet``, ``space.yaml``): a folder holding only a crafted experiment state (the
trial records Ray's ``ExperimentAnalysis`` cloudpickle-loads), ``tuner.pkl`` and a searcher
state runs no code; each command names what is missing in one line and exits 2. A table or
``sweep.json`` changed after the driver signed it is refused the same way."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from _crafted import one_error_line

from snnsearch.reporting.results import write_table
from snnsearch.storage import signing


def test_report_without_a_table_runs_no_stored_code(
    crafted_sweep: Callable[..., Path], marker: Path, capsys: pytest.CaptureFixture
) -> None:
    from snnsearch.report import main

    sweep = crafted_sweep()
    assert main([str(sweep), "--no-plots"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "trials.parquet" in line and str(sweep) in line and "--resume" in line
    assert not marker.exists()


def test_evaluate_without_a_table_runs_no_stored_code(
    crafted_sweep: Callable[..., Path], marker: Path, capsys: pytest.CaptureFixture
) -> None:
    from snnsearch.evaluate import main

    sweep = crafted_sweep()
    assert main([str(sweep), "--split", "test_files.txt", "--no-mlflow"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "trials.parquet" in line and str(sweep) in line
    assert not marker.exists()


def test_warm_start_without_a_table_runs_no_stored_code(
    crafted_sweep: Callable[..., Path], marker: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    from snnsearch.sweep.cli import main
    from snnsearch.testing.sweeps import QUADRATIC_SPACE

    sweep = crafted_sweep()
    storage = tmp_path / "new_storage"
    assert main("quadratic", ["--space", str(QUADRATIC_SPACE), "--storage", str(storage),
                              "--name", "next", "--mlflow-uri", f"sqlite:///{tmp_path}/m.db",
                              "--warm-start", str(sweep)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--warm-start" in line and "trials.parquet" in line
    assert not marker.exists()
    assert not (storage / "next").exists()  # refused before anything was written


def test_a_table_changed_after_signing_is_refused(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    from snnsearch.report import main

    sweep = tmp_path / "signed"
    signing.write_settings(str(sweep), {"name": "signed", "metric": "val_acc", "mode": "max"},
                           name="signed")
    write_table([{"trial_id": "a", "status": "completed", "best_val_acc": 0.5}], str(sweep))
    assert main([str(sweep), "--no-plots"]) == 0  # signed by the driver: read
    capsys.readouterr()
    good = (sweep / "trials.parquet").read_bytes()
    import pandas as pd  # a writer of the storage improves the numbers

    pd.DataFrame([{"trial_id": "a", "status": "completed", "best_val_acc": 0.99}]).to_parquet(
        sweep / "trials.parquet")
    assert main([str(sweep), "--no-plots"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "trials.parquet does not match its signature" in line
    from snnsearch.reporting.history import load_history, write_history

    write_history([{"trial_id": "a", "training_iteration": 1, "val_acc": 0.5}], str(sweep))
    pd.DataFrame([{"trial_id": "a", "training_iteration": 1, "val_acc": 0.99}]).to_parquet(
        sweep / "history.parquet")
    with pytest.raises(signing.UntrustedStorage, match="history.parquet does not match"):
        load_history(str(sweep), pd.DataFrame())
    (sweep / "trials.parquet").write_bytes(good)
    settings = json.loads((sweep / "sweep.json").read_text())
    (sweep / "sweep.json").write_text(json.dumps({**settings, "metric": "val_loss"}))
    assert main([str(sweep), "--no-plots"]) == 2
    assert "sweep.json does not match its signature" in one_error_line(capsys.readouterr().err)
