"""``selected_test_acc``: the test accuracy of the epoch with the best val_acc so far (what a
report's accuracy is compared with), checked against each epoch's saved model."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnsearch.classify.config import ClassifyConfig
from snnsearch.classify.data import load_classification
from snnsearch.classify.loop import LOSSES, evaluate
from snnsearch.classify.models import create_model
from snnsearch.classify.trainable import train_classifier
from snnsearch.training.checkpoint import load_checkpoint
from snnsearch.training.reporter import LocalReporter

pytestmark = pytest.mark.slow


def test_selected_test_acc_is_that_of_the_best_val_epoch(mnist_root: Path,
                                                         tmp_path: Path) -> None:
    config = {"data_dir": str(mnist_root), "train_subset": 300, "val_size": 300, "model": "fc",
              "hidden_layers": 0, "T": 2, "epochs": 4, "batch_size": 50, "lr": 0.05,
              "figures": False, "energy_images": 8}
    reporter = LocalReporter(tmp_path)
    final = train_classifier(config, reporter)
    cfg = ClassifyConfig.from_dict(config)
    data = load_classification("mnist", root=mnist_root, val_size=300, train_subset=300)
    test_accs = []
    for checkpoint in reporter.checkpoints:  # the model after each epoch
        model = create_model("fc", cfg.model_cfg())
        model.load_state_dict(load_checkpoint(checkpoint)["model"])
        test_accs.append(evaluate(model, data.test_x, data.test_y, loss_fn=LOSSES.get("mse"),
                                  batch_size=512)["acc"])
    vals = [m["val_acc"] for m in reporter.history]
    for epoch, metrics in enumerate(reporter.history, start=1):
        best = max(range(epoch), key=lambda i: (vals[i], -i))  # first epoch with the best val
        assert metrics["selected_epoch"] == best + 1, (vals, metrics)
        assert metrics["selected_test_acc"] == pytest.approx(test_accs[best])
    assert final["test_acc"] == pytest.approx(test_accs[-1])  # the last epoch's, as before
