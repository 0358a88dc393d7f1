"""Honest splits: drive-disjoint split files from the real KITTI sample, the overlap check, and
the sweep refusing overlapping splits before Ray starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snnsearch.depth.config import DepthConfig
from snnsearch.depth.data.gt import depth_map, load_gt_depths
from snnsearch.depth.data.kitti import SplitItem, read_split, write_split
from snnsearch.depth.splits import check_config_splits, check_disjoint, main, write_splits

STEREO_DRIVES = ("2011_09_26/2011_09_26_drive_0000_sync", "2011_09_26/2011_09_26_drive_0001_sync")


def test_drive_disjoint_split_files_and_val_gt(kitti_stereo_root: Path, tmp_path: Path) -> None:
    files = write_splits(kitti_stereo_root, tmp_path / "a", val_fraction=0.5, seed=3)
    train, val = read_split(files.train), read_split(files.val)
    assert len(train) == len(val) == 8
    assert {i.folder for i in train}.isdisjoint({i.folder for i in val})
    assert {i.folder for i in train} | {i.folder for i in val} == set(STEREO_DRIVES)
    gts = load_gt_depths(files.val_gt)
    assert len(gts) == len(val)
    np.testing.assert_array_equal(gts[2], depth_map(kitti_stereo_root, val[2]))
    again = write_splits(kitti_stereo_root, tmp_path / "b", val_fraction=0.5, seed=3, gt=False)
    assert read_split(again.val) == val  # seeded
    both = write_splits(kitti_stereo_root, tmp_path / "c", val_fraction=0.5, sides=("l", "r"),
                        gt=False)
    assert {i.side for i in read_split(both.train)} == {"l", "r"}


def test_test_list_drives_are_excluded(kitti_stereo_root: Path, tmp_path: Path) -> None:
    test_list = write_split(tmp_path / "test.txt", [SplitItem(STEREO_DRIVES[1], 5)])
    with pytest.raises(ValueError, match="1 drive.* left after excluding"):
        write_splits(kitti_stereo_root, tmp_path / "out", exclude=[test_list])
    assert not (tmp_path / "out").exists()  # nothing written on bad input
    code = main([str(kitti_stereo_root), "--out", str(tmp_path / "cli"),
                 "--exclude", str(test_list)])
    assert code == 2 and not (tmp_path / "cli").exists()


def test_overlap_is_an_error_and_shared_drives_a_warning() -> None:
    drive = STEREO_DRIVES[0]
    train = [SplitItem(drive, f) for f in (1, 2, 3)]
    with pytest.raises(ValueError, match=r"1 frame\(s\) are in both .* '.*drive_0000_sync 3'"):
        check_disjoint(train, [SplitItem(drive, 3, "r")])  # the other camera, same instant
    warnings = check_disjoint(train, [SplitItem(drive, 6)])
    assert len(warnings) == 1 and "drive(s) are in both" in warnings[0]
    assert check_disjoint(train, [SplitItem(STEREO_DRIVES[1], 3)]) == []


def test_kitti_config_needs_explicit_splits(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="explicit train_split and val_split"):
        DepthConfig.from_dict({"data": "kitti", "data_dir": str(tmp_path)})
    with pytest.raises(ValueError, match="explicit val_split file"):
        check_config_splits({"data": "kitti", "data_dir": str(tmp_path), "train_split": "t.txt"})
    with pytest.raises(ValueError, match="train_split file not found: .*t.txt"):
        check_config_splits({"data": "kitti", "data_dir": str(tmp_path), "train_split": "t.txt",
                             "val_split": "v.txt"})
    assert check_config_splits({"data": "synthetic"}) == []


def test_sweep_refuses_overlapping_splits_before_ray(
    kitti_stereo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture, ray_stopped: None,
) -> None:
    """The real CLI path: exit 2 with one line, nothing created, Ray not started."""
    import ray

    from snnsearch.sweep.cli import main as sweep_main
    from snnsearch.sweep.preflight import check_trial_inputs

    splits = tmp_path / "splits"
    write_split(splits / "train.txt", [SplitItem(STEREO_DRIVES[0], f) for f in (1, 2)])
    write_split(splits / "val.txt", [SplitItem(STEREO_DRIVES[0], 2)])
    write_split(splits / "val_ok.txt", [SplitItem(STEREO_DRIVES[0], 5)])
    space = tmp_path / "depth.yaml"
    space.write_text(
        "trainable: depth\nexperiment: depth\n"
        f"fixed: {{data: kitti, train_split: {splits / 'train.txt'}, "
        f"val_split: {splits / 'val.txt'}}}\n"
        "space: {lr: {float: [1.0e-4, 1.0e-3], log: true}}\n"
        "tune: {metric: abs_rel, mode: min}\n"
    )
    code = sweep_main("depth", ["--space", str(space), "--data-dir", str(kitti_stereo_root),
                                "--storage", str(tmp_path / "store"), "--name", "s"])
    err = capsys.readouterr().err
    assert code == 2 and "are in both the" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "store").exists() and not ray.is_initialized()
    # The same drive without a shared frame: a warning only.
    check_trial_inputs("depth", {"data": "kitti", "data_dir": str(tmp_path),
                                 "train_split": "splits/train.txt",
                                 "val_split": "splits/val_ok.txt"})
    assert "drive(s) are in both" in caplog.text
