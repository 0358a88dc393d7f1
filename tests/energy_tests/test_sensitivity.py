"""Best trials under every energy model, from hand-made trial-table rows (no training)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from snnsearch.energy.sensitivity import SENSITIVITY_FILE, sensitivity_table, write_sensitivity

SLUGS = ("compute45", "compute45_memory", "int8", "int8_memory")


def _row(trial: str, acc: float, rate: float) -> dict:
    row = {"trial_id": trial, "status": "completed", "last/val_acc": acc, "config/model": "csnn",
           "config/T": 4, "last/synaptic_rate": rate}
    for i, slug in enumerate(SLUGS):
        row[f"last/energy/{slug}_mj"] = rate * (i + 1)
        row[f"last/energy_ratio/{slug}"] = rate / (i + 1)
        row[f"last/breakeven_rate/{slug}"] = 0.3 / (i + 1)
    return row


def test_best_trials_with_every_model() -> None:
    rows = [_row("a", 0.90, 0.1), _row("b", 0.97, 0.2), _row("c", 0.95, 0.05),
            {"trial_id": "d", "status": "errored"}]
    table = sensitivity_table(pd.DataFrame(rows), metric="val_acc", mode="max", top=2)
    assert table["trial_id"].tolist() == ["b", "c"]
    assert table["val_acc"].tolist() == [0.97, 0.95]
    assert table["synaptic_rate"].tolist() == [0.2, 0.05]
    for slug in SLUGS:
        assert {f"energy/{slug}_mj", f"energy_ratio/{slug}", f"breakeven_rate/{slug}"} <= set(
            table.columns)
    assert table.loc[0, "breakeven_rate/int8"] == pytest.approx(0.1)
    assert {"model", "T"} <= set(table.columns)
    low = sensitivity_table(pd.DataFrame(rows), metric="val_acc", mode="min", top=1)
    assert low["trial_id"].tolist() == ["a"]


def test_written_beside_the_trial_table_or_skipped(tmp_path: Path) -> None:
    path = write_sensitivity([_row("a", 0.9, 0.1)], metric="val_acc", mode="max",
                             sweep_dir=str(tmp_path))
    assert path == tmp_path / SENSITIVITY_FILE
    assert pd.read_csv(path)["trial_id"].tolist() == ["a"]
    no_energy = [{"trial_id": "x", "last/val_acc": 0.5}]
    assert write_sensitivity(no_energy, metric="val_acc", mode="max",
                             sweep_dir=str(tmp_path / "none")) is None
