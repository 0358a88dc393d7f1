"""``tune_depth`` as a Ray Tune function trainable: metrics and a persisted checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnsearch.trainables.depth import tune_depth


@pytest.mark.ray
@pytest.mark.slow
def test_tune_depth_reports_through_ray(ray_session: None, tmp_path: Path) -> None:
    from ray import tune

    config = {
        "data": "synthetic",
        "data_dir": str(tmp_path / "synth"),
        "height": 64,
        "width": 128,
        "synthetic_height": 64,
        "synthetic_width": 192,
        "num_scenes": 2,
        "frames_per_scene": 4,
        "encoder": "ms_resnet",
        "neuron": "ilif",
        "T": 1,
        "batch_size": 2,
        "epochs": 2,
        "device": "cpu",
    }
    tuner = tune.Tuner(
        tune_depth,
        param_space=config,
        tune_config=tune.TuneConfig(num_samples=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="depth"),
    )
    result = tuner.fit()[0]
    assert result.error is None
    assert result.metrics["epoch"] == 2 and 0 < result.metrics["abs_rel"] < 2
    assert result.checkpoint is not None
    with result.checkpoint.as_directory() as ckpt:
        assert (Path(ckpt) / "state.pt").is_file()
