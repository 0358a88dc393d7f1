"""GT files name their frames: another split's GT is an error, not scores against wrong maps
(real KITTI sample, velodyne projection)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snnsearch.depth.config import DepthConfig
from snnsearch.depth.data.gt import (
    depth_map,
    export_gt_depths,
    frame_id,
    load_gt_for,
    save_gt_depths,
)
from snnsearch.depth.data.kitti import scan_frames, write_split


@pytest.fixture(scope="module")
def gt_file(kitti_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """The sample's frames 1-4 and their exported GT."""
    items = scan_frames(kitti_sample)[:4]
    return export_gt_depths(kitti_sample, items, tmp_path_factory.mktemp("gt") / "gt.npz"), items


def test_gt_of_the_items_is_read_by_frame_id(kitti_sample: Path, gt_file: tuple) -> None:
    path, items = gt_file
    picked = [items[2], items[0]]  # a subset in another order: each gets its own map
    maps = load_gt_for(path, picked)
    for item, got in zip(picked, maps):
        np.testing.assert_array_equal(got, depth_map(kitti_sample, item))


def test_gt_of_another_split_is_refused(kitti_sample: Path, gt_file: tuple) -> None:
    path, _ = gt_file
    other = scan_frames(kitti_sample)[4:6]  # frames 5, 6: the file holds 1-4 (more maps!)
    with pytest.raises(ValueError) as info:
        load_gt_for(path, other)
    message = str(info.value)
    assert str(path) in message and repr(frame_id(other[0])) in message
    assert "\n" not in message


def test_gt_without_frame_ids_is_refused_with_the_fix(kitti_sample: Path, tmp_path: Path) -> None:
    items = scan_frames(kitti_sample)[:2]
    old = tmp_path / "old_gt.npz"
    np.savez_compressed(old, data=np.stack([depth_map(kitti_sample, i) for i in items]))
    with pytest.raises(ValueError) as info:
        load_gt_for(old, items)
    message = str(info.value)
    assert str(old) in message and "does not name its frames" in message
    assert "python -m snnsearch.depth.splits" in message and "\n" not in message
    with pytest.raises(ValueError, match="2 GT maps for 1 items"):
        save_gt_depths(tmp_path / "x.npz", [np.ones((2, 2))] * 2, items=items[:1])


def test_training_refuses_a_gt_file_of_another_split(
    kitti_sample: Path, gt_file: tuple, tmp_path: Path
) -> None:
    """The review's case: a val split of frames 5-6 with the GT file of frames 1-4 (at least as
    many maps) was accepted and truncated; validation scored against other frames' depth."""
    from snnsearch.depth.trainable import build_data

    path, _ = gt_file
    frames = scan_frames(kitti_sample)
    cfg = DepthConfig.from_dict({
        "data": "kitti", "data_dir": str(kitti_sample), "height": 64, "width": 192,
        "train_split": str(write_split(tmp_path / "train.txt", frames[:2])),
        "val_split": str(write_split(tmp_path / "val.txt", frames[4:6])),
        "gt_path": str(path), "frame_cache": "off",
    })
    with pytest.raises(ValueError, match="does not match the split"):
        build_data(cfg)
