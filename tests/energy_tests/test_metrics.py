"""Trainables log every energy model and write the per-layer table into each checkpoint."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from snnsearch.classify.trainable import train_classifier
from snnsearch.energy import model_names
from snnsearch.training.reporter import ENERGY_TABLE, LocalReporter


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


def test_reports_of_several_images_average_layer_by_layer(tmp_path: Path) -> None:
    import torch

    from snnsearch.classify.models import ModelCfg, create_model
    from snnsearch.energy import EnergyReport, energy_summary, estimate_energy, write_layer_table
    from snnsearch.snn.neurons import NeuronSpec

    torch.manual_seed(0)
    net = create_model("csnn", ModelCfg(T=2, neuron=NeuronSpec(kind="if", v_threshold=0.2),
                                        channels=4))
    images = torch.rand(2, 1, 28, 28)
    single = [estimate_energy(net, images[i:i + 1], timesteps=2, spiking=True) for i in (0, 1)]
    both = estimate_energy(net, images, timesteps=2, spiking=True)
    mean = EnergyReport.mean(single)
    assert [layer.rate for layer in mean.layers] == pytest.approx(
        [layer.rate for layer in both.layers])
    assert mean.total_mj == pytest.approx(both.total_mj)
    assert [s.updates_per_image for s in mean.sites] == [s.updates_per_image for s in both.sites]
    with pytest.raises(ValueError, match="no energy reports"):
        EnergyReport.mean([])
    path = write_layer_table(energy_summary(mean, twin=None), tmp_path / "t.csv")
    assert path.read_text().splitlines()[0].startswith("layer,kind,ops,rate,compute45/")
