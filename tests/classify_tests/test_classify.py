"""The classification trainable on the real MNIST / FashionMNIST files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from snnsearch.classify.models import ModelCfg, create_model
from snnsearch.classify.trainable import train_classifier
from snnsearch.snn.neurons import NeuronSpec
from snnsearch.training.checkpoint import load_checkpoint, save_checkpoint
from snnsearch.training.pretrain import neuron_param_names, transfer_weights
from snnsearch.training.reporter import LocalReporter

pytestmark = pytest.mark.slow


def test_single_layer_fc_snn_one_epoch_full_mnist(mnist_root: Path, tmp_path: Path) -> None:
    """Source report: 86.9% for Flatten → Linear(784, 10, bias=False) → LIF(tau=2, ATan)."""
    reporter = LocalReporter(tmp_path)
    final = train_classifier(
        {"data_dir": str(mnist_root), "model": "fc", "hidden_layers": 0, "neuron": "lif",
         "tau": 2.0, "T": 4, "epochs": 1, "batch_size": 64, "lr": 1e-3}, reporter)
    assert final["test_acc"] >= 0.85
    (metrics,) = reporter.history
    for key in ("train_loss", "val_acc", "epoch_time_s", "train_images_per_s", "energy_mj",
                "output_firing_rate", "silent_fraction", "firing_rate/readout.neuron"):
        assert key in metrics
    assert metrics["energy_mj"] == pytest.approx(784 * 10 * 4.6e-9)  # one MAC layer, once
    figures = reporter.checkpoints[0] / "figures"
    assert (figures / "output_firing_rates.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("config", "floor"),
    [({"model": "csnn", "channels": 8, "neuron": "if", "T": 2, "epochs": 2, "lr": 3e-3}, 0.5),
     ({"model": "spikformer", "dataset": "fashion", "embed_dim": 32, "heads": 2, "T": 2,
       "epochs": 2, "lr": 3e-3, "batch_size": 32}, 0.35)],
)
def test_small_runs_learn_well_above_chance(mnist_root: Path, config: dict, floor: float) -> None:
    reporter = LocalReporter(mnist_root / "runs" / config["model"])
    final = train_classifier({"data_dir": str(mnist_root), "train_subset": 1500, "batch_size": 50,
                              "energy_images": 16, **config}, reporter)
    assert final["val_acc"] >= floor and final["test_acc"] >= floor
    assert 0 < final["energy_mj"]
    if config["model"] == "csnn":
        assert (reporter.checkpoints[-1] / "figures" / "spike_maps.png").exists()


def test_resume_continues_exactly(mnist_root: Path, tmp_path: Path) -> None:
    config = {"data_dir": str(mnist_root), "train_subset": 600, "model": "csnn", "channels": 4,
              "T": 2, "epochs": 3, "batch_size": 50, "figures": False, "seed": 7}
    straight = LocalReporter(tmp_path / "straight")
    train_classifier(config, straight)
    resumed = LocalReporter(tmp_path / "resumed", resume_from=straight.checkpoints[0])
    train_classifier(config, resumed)
    assert [m["epoch"] for m in resumed.history] == [2, 3]
    for a, b in zip(straight.history[1:], resumed.history):
        for key in ("train_loss", "val_acc", "val_loss", "energy_mj", "output_firing_rate", "test_acc"):
            if key in a:
                assert a[key] == b[key], key
    weights_a = load_checkpoint(straight.checkpoints[-1])["model"]
    weights_b = load_checkpoint(resumed.checkpoints[-1])["model"]
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_resume_with_incompatible_config_is_clear(mnist_root: Path, tmp_path: Path) -> None:
    base = {"data_dir": str(mnist_root), "train_subset": 200, "model": "fc", "epochs": 1,
            "figures": False}
    first = LocalReporter(tmp_path / "a")
    train_classifier(base, first)
    with pytest.raises(ValueError, match=r"written for another model \(model: 'fc' vs 'csnn', channels: 128 vs 4\)"):
        train_classifier({**base, "model": "csnn", "channels": 4},
                         LocalReporter(tmp_path / "b", resume_from=first.checkpoints[0]))


@pytest.mark.parametrize(("snn", "kind"), [("csnn", "plif"), ("spikformer", "lif"), ("fc", "ilif")])
def test_ann_to_snn_transfer_loads_every_tensor(snn: str, kind: str) -> None:
    cfg = ModelCfg(T=2, neuron=NeuronSpec(kind=kind), channels=4, embed_dim=16, heads=2,
                   hidden_layers=1, hidden_width=8)
    target = create_model(snn, cfg)
    ann = create_model(snn, cfg.ann_twin())
    loaded = transfer_weights(ann.state_dict(), target, origin="test")
    expected = set(target.state_dict()) - neuron_param_names(target)
    assert set(loaded) == expected
    for key in expected:
        assert torch.equal(target.state_dict()[key], ann.state_dict()[key])


def test_pretrain_ann_and_checkpoint(mnist_root: Path, tmp_path: Path) -> None:
    base = {"data_dir": str(mnist_root), "train_subset": 500, "model": "csnn", "channels": 8,
            "T": 2, "epochs": 1, "batch_size": 50, "figures": False, "v_threshold": 0.5}
    from_ann = train_classifier({**base, "pretrain": "ann", "pretrain_epochs": 1})
    scratch = train_classifier(base)
    # Same seed and data order: only the initial weights differ, so the losses must too.
    assert scratch["train_loss"] != pytest.approx(0.1)  # 0.1 = a silent net's MSE, which hides it
    assert from_ann["train_loss"] != scratch["train_loss"]
    ckpt = tmp_path / "ckpt"
    first = LocalReporter(tmp_path / "first")
    train_classifier(base, first)
    save_checkpoint(ckpt, load_checkpoint(first.checkpoints[0]))
    train_classifier({**base, "pretrain": f"checkpoint:{ckpt}"})
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        train_classifier({**base, "pretrain": f"checkpoint:{tmp_path / 'nope'}"})
    with pytest.raises(ValueError, match="do not fit this model"):
        train_classifier({**base, "channels": 16, "pretrain": f"checkpoint:{ckpt}"})
    with pytest.raises(ValueError, match="pretrain=ann needs a spiking model"):
        train_classifier({**base, "model": "csnn_ann", "pretrain": "ann"})
