"""``snnsearch.evaluate`` tests the checkpoint of the epoch whose val value the sweep reports
(``best_epoch``), not the latest one, and the sweep keeps that checkpoint whatever
``--keep-checkpoints`` says (``sweep/tuner.py``: Ray's ``checkpoint_score_attribute``). A trial
whose val accuracy peaks at epoch 2 of 4 under ``--keep-checkpoints 1``: its epoch-2 checkpoint
is kept (with the latest, which resume needs) and is the one evaluate picks."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from snnsearch.sweep.cli import main

CURVE = (0.5, 0.9, 0.6, 0.55)  # val_acc per epoch: the sweep selects epoch 2


def peaking(config: dict[str, Any]) -> None:
    """A trainable whose val accuracy peaks before its last epoch; one checkpoint per epoch."""
    from ray import tune

    from snnsearch.training.checkpoint import save_checkpoint

    for epoch, acc in enumerate(CURVE, start=1):
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(tmp, {"epoch": epoch})
            tune.report({"val_acc": acc, "epoch": epoch},
                        checkpoint=tune.Checkpoint.from_directory(tmp))


@pytest.mark.ray
@pytest.mark.slow
def test_evaluate_picks_the_selected_epochs_checkpoint_and_the_sweep_keeps_it(
    ray_local: None, tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:
    import ray.cloudpickle

    from snnsearch.evaluate import best_trial, selected_checkpoint
    from snnsearch.training.checkpoint import load_checkpoint

    # Ray's workers cannot import this test module: its functions travel by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    space = tmp_path / "peaking.yaml"
    space.write_text(yaml.safe_dump({
        "trainable": f"{__name__}:peaking", "experiment": "peaking", "fixed": {},
        "space": {"x": {"float": [0.0, 1.0]}},
        "tune": {"metric": "val_acc", "mode": "max", "samples": 1, "max_epochs": 4,
                 "grace": 4}}))
    try:
        assert main("peaking", ["--space", str(space), "--storage", str(tmp_path),
                                "--name", "peak", "--mlflow-uri", mlflow_uri,
                                "--keep-checkpoints", "1", "--scheduler", "fifo"]) == 0
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    capsys.readouterr()
    best = best_trial(tmp_path / "peak")
    assert (best.epoch, best.value) == (2, 0.9)
    checkpoint = selected_checkpoint(best)
    assert load_checkpoint(checkpoint)["epoch"] == 2
    kept = sorted(load_checkpoint(p.parent)["epoch"]
                  for p in best.path.glob("checkpoint_*/state.pt"))
    assert kept == [2, 4]  # the selected one and the latest (resume), nothing more
