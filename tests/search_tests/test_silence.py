"""Silent / saturated verdicts: hand-made metrics, the stopper, and a real silent spiking net."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from snnsearch.search.silence import (
    COMPLETED,
    EARLY_STOPPED,
    ERROR,
    NON_FINITE,
    SATURATED,
    SILENT,
    SilenceStopper,
    silence_verdict,
    trial_outcome,
)


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"output_firing_rate": 0.12, "silent_fraction": 0.01}, None),
        ({"output_firing_rate": 0.0, "silent_fraction": 1.0}, SILENT),
        ({"output_firing_rate": 5e-4}, SILENT),
        # Fires a lot on a few images but nothing on 95% of them: still silent.
        ({"output_firing_rate": 0.2, "silent_fraction": 0.95}, SILENT),
        ({"output_firing_rate": 0.97, "silent_fraction": 0.0}, SATURATED),
        ({"silent_fraction": 0.3}, None),
        ({"output_firing_rate": math.nan, "silent_fraction": math.nan}, None),
        # I-LIF D=8 at raw count rate 0.805 (the healthy MNIST CSNN of the issue): 0.10 of max.
        ({"output_firing_rate": 0.805, "output_rate_norm": 0.805 / 8, "silent_fraction": 0.0}, None),
        ({"output_firing_rate": 7.9, "output_rate_norm": 7.9 / 8, "silent_fraction": 0.0}, SATURATED),
        # A bare raw rate is normalised with the trial config Ray puts into the result.
        ({"output_firing_rate": 1.6, "config": {"neuron": "ilif", "D": 8}}, None),
        ({"output_firing_rate": 1.6, "config": {"neuron": "lif", "D": 8}}, SATURATED),
        # Depth: a share of layers under its own name.
        ({"output_firing_rate": 0.1, "silent_layer_fraction": 0.95}, SILENT),
        ({"output_firing_rate": 0.1, "silent_layer_fraction": 0.25}, None),
    ],
)
def test_verdict(metrics: dict, expected: str | None) -> None:
    assert silence_verdict(metrics) == expected


def test_verdict_thresholds_and_missing_keys() -> None:
    m = {"output_firing_rate": 0.05, "silent_fraction": 0.5}
    assert silence_verdict(m, silent_below=0.1) == SILENT
    assert silence_verdict(m, max_silent_fraction=0.4) == SILENT
    assert silence_verdict(m, saturated_above=0.04, silent_below=0.0) == SATURATED
    with pytest.raises(ValueError, match="none of .*'output_rate_norm'.*'silent_fraction'"):
        silence_verdict({"val_acc": 0.1})


def test_stopper_checks_from_epoch_and_records_reason() -> None:
    stopper = SilenceStopper(check_from=2)
    early = {"training_iteration": 1, "output_firing_rate": 0.0, "silent_fraction": 1.0}
    assert stopper("t1", early) is False and "stop_reason" not in early
    late = {"training_iteration": 2, "output_firing_rate": 0.0, "silent_fraction": 1.0}
    assert stopper("t1", late) is True
    assert late["stop_reason"] == SILENT  # travels on to callbacks and trial.last_result
    hot = {"training_iteration": 3, "output_firing_rate": 1.0, "silent_fraction": 0.0}
    assert stopper("t2", hot) is True and hot["stop_reason"] == SATURATED
    ok = {"training_iteration": 3, "output_firing_rate": 0.1, "silent_fraction": 0.0}
    assert stopper("t3", ok) is False
    assert stopper.stopped == {"t1": SILENT, "t2": SATURATED}
    assert stopper.stop_all() is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"check_from": -1}, "check_from"),
        ({"max_silent_fraction": 1.5}, "max_silent_fraction"),
        ({"silent_below": 0.5, "saturated_above": 0.4}, "must exceed"),
    ],
)
def test_stopper_rejects(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SilenceStopper(**kwargs)


@pytest.mark.parametrize(
    ("result", "error", "expected"),
    [
        (None, True, ERROR),
        (None, False, EARLY_STOPPED),
        ({"training_iteration": 4, "val_acc": 0.9}, False, COMPLETED),
        ({"training_iteration": 2, "val_acc": 0.9}, False, EARLY_STOPPED),
        ({"training_iteration": 1, "val_acc": 0.1, "stop_reason": SILENT}, False, SILENT),
        ({"training_iteration": 4, "val_acc": math.nan}, False, NON_FINITE),
        ({"training_iteration": 4}, False, EARLY_STOPPED),
    ],
)
def test_trial_outcome(result: dict | None, error: bool, expected: str) -> None:
    got = trial_outcome(result, error=error, max_t=4, metrics=("val_acc",))
    assert got == expected


def _mnist_images(shared_data: Path, n: int) -> np.ndarray:
    """First ``n`` real MNIST test images in [0, 1], parsed from the IDX file."""
    with gzip.open(shared_data / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz", "rb") as fh:
        magic, count, rows, cols = np.frombuffer(fh.read(16), ">i4")
        assert magic == 2051 and count >= n
        pixels = np.frombuffer(fh.read(n * rows * cols), np.uint8)
    return pixels.reshape(n, rows * cols).astype(np.float32) / 255.0


def _output_spike_metrics(v_threshold: float, bias: float | None, images: np.ndarray) -> dict:
    """Linear readout into LIF neurons for T=4 steps; the two metrics the trainables report."""
    import torch
    from spikingjelly.activation_based import functional, neuron, surrogate

    torch.manual_seed(0)
    fc = torch.nn.Linear(images.shape[1], 10)
    if bias is not None:
        torch.nn.init.constant_(fc.bias, bias)
    lif = neuron.LIFNode(
        tau=2.0, v_threshold=v_threshold, surrogate_function=surrogate.ATan(), step_mode="m"
    )
    x = torch.from_numpy(images)
    with torch.no_grad():
        spikes = lif(fc(x).unsqueeze(0).repeat(4, 1, 1))  # [T, B, classes]
    functional.reset_net(lif)
    return {
        "training_iteration": 1,
        "output_firing_rate": float(spikes.mean()),
        "silent_fraction": float((spikes.sum(dim=(0, 2)) == 0).float().mean()),
    }


def test_real_silent_and_saturated_nets_are_caught(shared_data: Path) -> None:
    images = _mnist_images(shared_data, 64)
    silent = _output_spike_metrics(1e6, None, images)  # threshold no input can reach
    healthy = _output_spike_metrics(0.1, None, images)
    saturated = _output_spike_metrics(1e-3, 1.0, images)  # bias alone crosses threshold
    assert silent["output_firing_rate"] == 0.0 and silent["silent_fraction"] == 1.0
    stopper = SilenceStopper()
    assert stopper("silent", silent) is True and silent["stop_reason"] == SILENT
    assert stopper("healthy", healthy) is False, healthy
    assert stopper("saturated", saturated) is True and saturated["stop_reason"] == SATURATED


def _ilif_readout_metrics(current: float, images: np.ndarray, D: int = 8) -> dict:
    """Real MNIST images through a linear readout into spikingjelly's I-LIF (counts 0..D) for
    T=4 steps, every readout current shifted to ``current``; the metrics the trainable reports."""
    import torch

    from snnsearch.snn.neurons import NeuronSpec

    torch.manual_seed(0)
    spec = NeuronSpec(kind="ilif", tau=2.0, D=D)
    fc = torch.nn.Linear(images.shape[1], 10)
    torch.nn.init.normal_(fc.weight, std=0.01)
    torch.nn.init.constant_(fc.bias, current)
    node = spec.build()
    with torch.no_grad():
        counts = node(fc(torch.from_numpy(images)).unsqueeze(0).repeat(4, 1, 1))
    rate = float(counts.mean())
    return {
        "training_iteration": 2,
        "output_firing_rate": rate,
        "output_rate_norm": rate / spec.max_output,
        "silent_fraction": float((counts.sum(dim=(0, 2)) == 0).float().mean()),
    }


def test_ilif_d8_healthy_net_is_not_stopped_but_silent_and_saturated_are(
    shared_data: Path,
) -> None:
    images = _mnist_images(shared_data, 64)
    healthy = _ilif_readout_metrics(1.0, images)   # about one count per step of D=8
    saturated = _ilif_readout_metrics(50.0, images)  # every neuron at D in every step
    silent = _ilif_readout_metrics(-50.0, images)
    # The healthy net's raw count rate is above the 0.9 cut that binary spikes use ...
    assert 0.9 < healthy["output_firing_rate"] < 2.0, healthy
    assert saturated["output_firing_rate"] == pytest.approx(8.0)
    stopper = SilenceStopper()
    # ... but judged on its share of the maximum output it is healthy.
    assert stopper("healthy", healthy) is False, healthy
    assert stopper("saturated", saturated) is True and saturated["stop_reason"] == SATURATED
    assert stopper("silent", silent) is True and silent["stop_reason"] == SILENT


def test_classifier_reports_rate_normalised_by_d(mnist_root: Path, tmp_path: Path) -> None:
    from snnsearch.classify.trainable import train_classifier
    from snnsearch.training.reporter import LocalReporter

    config = {"data_dir": str(mnist_root), "model": "fc", "neuron": "ilif", "D": 8, "T": 2,
              "train_subset": 256, "val_size": 128, "batch_size": 64, "epochs": 1,
              "energy_images": 8, "figures": False, "device": "cpu"}
    metrics = train_classifier(config, LocalReporter(tmp_path))
    assert metrics["output_rate_norm"] == pytest.approx(metrics["output_firing_rate"] / 8)
    assert 0.0 <= metrics["output_rate_norm"] <= 1.0
