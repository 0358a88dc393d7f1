"""``tune_depth`` as a Ray Tune function trainable: metrics and a persisted checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnsearch.depth.trainable import tune_depth


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


def test_depth_space_keeps_one_checkpoint_and_no_silence_stopper(tmp_path: Path) -> None:
    """The shipped depth space: one checkpoint per trial (more with --keep-checkpoints), and no
    silence stopping (a silent deepest stage still predicts through the membrane shortcut)."""
    from snnsearch.spaces.space import load_space
    from snnsearch.sweep.cli import REPO, build_parser
    from snnsearch.sweep.settings import resolve_settings
    from snnsearch.sweep.tuner import build_tuner

    space = load_space(REPO / "search_spaces" / "depth.yaml")
    for smoke in (False, True):
        settings = resolve_settings(space, task="depth", overrides={}, smoke=smoke)
        assert settings.keep_checkpoints == 1 and settings.silence is False
    args = build_parser("depth", REPO).parse_args(["--keep-checkpoints", "3", "--silence"])
    settings = resolve_settings(
        space, task="depth", overrides={"keep_checkpoints": args.keep_checkpoints,
                                        "silence": args.silence, "storage": str(tmp_path)},
        smoke=True)  # building the Tuner writes its experiment folder: not in ~/ray_results
    assert settings.keep_checkpoints == 3 and settings.silence is True
    tuner = build_tuner(settings, space, trainable=tune_depth)
    run_config = tuner._local_tuner.get_run_config()
    # Kept by the trimmer (Ray's num_to_keep would force a snapshot per checkpoint).
    from snnsearch.sweep.checkpoint_trim import CheckpointTrimmer

    trimmers = [c for c in run_config.callbacks if isinstance(c, CheckpointTrimmer)]
    assert [t.keep for t in trimmers] == [3] and run_config.stop is not None
    with pytest.raises(ValueError, match="--keep-checkpoints must be >= 1"):
        resolve_settings(space, task="depth", overrides={"keep_checkpoints": 0})
