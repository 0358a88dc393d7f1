"""Trainables log every energy model and write the per-layer table into each checkpoint."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from snnsearch.energy import model_names
from snnsearch.trainables.classify import train_classifier
from snnsearch.trainables.reporting import ENERGY_TABLE, LocalReporter


def test_classifier_logs_all_models_and_the_layer_table(mnist_root: Path, tmp_path: Path) -> None:
    reporter = LocalReporter(tmp_path)
    final = train_classifier(
        {"data_dir": str(mnist_root), "train_subset": 300, "model": "csnn", "channels": 4,
         "neuron": "ilif", "D": 2, "T": 2, "epochs": 1, "batch_size": 50, "figures": False,
         "energy_images": 8, "energy_model": "compute45+memory", "sram_kb": 64}, reporter)
    for slug in ("compute45", "compute45_memory", "int8", "int8_memory"):
        assert final[f"energy/{slug}_mj"] > 0 and final[f"energy_ratio/{slug}"] > 0
        assert f"breakeven_rate/{slug}" in final
    assert final["energy_mj"] == final["energy/compute45_memory_mj"]
    assert final["energy_memory_mj"] > 0 and final["energy_ann_mj"] > 0
    with (reporter.checkpoints[0] / ENERGY_TABLE).open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["kind"] for row in rows} == {"mac", "ac", "spiking"}
    chosen = ("compute45+memory/compute_mj", "compute45+memory/memory_mj")
    total = sum(float(row[key]) for row in rows for key in chosen)
    assert total == pytest.approx(final["energy_mj"])
    assert all(f"{name}/memory_mj" in rows[0] for name in model_names())


def test_unknown_energy_model_fails_before_training(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="energy_model must be one of"):
        train_classifier({"energy_model": "loihi"}, LocalReporter(tmp_path))
