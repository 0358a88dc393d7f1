"""KITTI raw loader and velodyne GT on the real sample (``kitti_raw_sample`` of the real-data folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnsearch.depth.data.gt import (
    depth_map,
    export_gt_depths,
    load_gt_depths,
    project_points,
    save_gt_depths,
)
from snnsearch.depth.data.kitti import (
    GpuAugment,
    KittiRawDataset,
    SplitItem,
    normalized_intrinsics,
    read_calib_file,
    read_split,
    scan_frames,
    to_unit,
    write_split,
)

DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"


@pytest.fixture(scope="module")
def kitti_root(kitti_sample: Path) -> Path:
    return kitti_sample


def test_auto_split_keeps_frames_with_both_neighbours(kitti_root: Path) -> None:
    items = scan_frames(kitti_root)
    assert [i.frame for i in items] == list(range(1, 9))
    assert {i.folder for i in items} == {DRIVE}


def test_intrinsics_from_calibration(kitti_root: Path) -> None:
    K = normalized_intrinsics(kitti_root, "2011_09_26")
    # P_rect_02 of 2011_09_26: fx = fy = 721.5377, cx = 609.5593, cy = 172.854; image 1242×375
    assert K[0, 0] == pytest.approx(721.5377 / 1242, rel=1e-5)
    assert K[1, 1] == pytest.approx(721.5377 / 375, rel=1e-5)
    assert K[0, 2] == pytest.approx(609.5593 / 1242, rel=1e-5)
    assert K[1, 2] == pytest.approx(172.854 / 375, rel=1e-5)


def test_triplets_are_ordered_0_minus1_plus1(kitti_root: Path) -> None:
    items = [SplitItem(DRIVE, 2), SplitItem(DRIVE, 3)]
    ds = KittiRawDataset(kitti_root, items, height=64, width=192)
    a, b = ds[0], ds[1]
    assert a.frames.shape == (3, 3, 64, 192) and a.frames.dtype == torch.uint8
    assert torch.equal(a.frames[2], b.frames[0])  # frame 3 is +1 of item 2 and 0 of item 3
    assert torch.equal(b.frames[1], a.frames[0])
    assert not torch.equal(a.frames[0], a.frames[1])
    assert a.K[0, 0].item() == pytest.approx(721.5377 / 1242 * 192, rel=1e-5)
    assert a.K[1, 2].item() == pytest.approx(172.854 / 375 * 64, rel=1e-5)


def test_split_file_round_trip_and_bad_line(tmp_path: Path) -> None:
    items = [SplitItem(DRIVE, 1), SplitItem(DRIVE, 5)]
    assert read_split(write_split(tmp_path / "s.txt", items)) == items
    (tmp_path / "bad.txt").write_text(f"{DRIVE} 1 l\n{DRIVE} x l\n")
    with pytest.raises(ValueError, match=r"bad.txt:2"):
        read_split(tmp_path / "bad.txt")


def test_missing_frame_names_the_path(kitti_root: Path) -> None:
    ds = KittiRawDataset(kitti_root, [SplitItem(DRIVE, 9)], height=64, width=192)
    with pytest.raises(FileNotFoundError, match="0000000010.png"):
        ds[0]


def test_missing_calibration_names_the_path(kitti_root: Path, tmp_path: Path) -> None:
    (tmp_path / "2011_09_26").mkdir()
    (tmp_path / DRIVE).symlink_to(kitti_root / DRIVE)
    with pytest.raises(FileNotFoundError, match="calib_cam_to_cam.txt"):
        KittiRawDataset(tmp_path, [SplitItem(DRIVE, 1)], height=64, width=192)


def test_gt_projection_on_real_scans(kitti_root: Path) -> None:
    for item in scan_frames(kitti_root):
        gt = depth_map(kitti_root, item)
        valid = gt[gt > 0]
        assert gt.shape == (375, 1242)
        assert 15_000 <= valid.size <= 16_500  # measured: ≈15–16k of ≈113k points land in image_02
        assert 2.5 < valid.min() < 4.0 and 75.0 < valid.max() < 80.0


def test_projection_hand_case() -> None:
    # Identity rectification, K with fx=fy=100, cx=50, cy=20, KITTI's velodyne axes.
    K = np.array([[100.0, 0, 50], [0, 100.0, 20], [0, 0, 1]])
    velo_to_cam = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    P = np.hstack([K, np.zeros((3, 1))]) @ velo_to_cam
    pts = np.array(
        [
            [10.0, 0.0, 0.0, 1.0],  # straight ahead: pixel (50, 20) → stored at (49, 19)
            [20.0, 0.0, 0.0, 1.0],  # same pixel, farther: the nearer point wins
            [-5.0, 0.0, 0.0, 1.0],  # behind the scanner: dropped
            [10.0, -1.0, 0.0, 1.0],  # 1 m to the right at 10 m: u = 50 + 10
        ],
        dtype=np.float32,
    )
    out = project_points(pts, P, (40, 100))
    assert out[19, 49] == pytest.approx(10.0)
    assert out[19, 59] == pytest.approx(10.0)
    assert (out > 0).sum() == 2


def test_export_gt_depths_round_trip(kitti_root: Path, tmp_path: Path) -> None:
    items = scan_frames(kitti_root)[:2]
    path = export_gt_depths(kitti_root, items, tmp_path / "gt_depths.npz")
    loaded = load_gt_depths(path)
    assert len(loaded) == 2
    np.testing.assert_array_equal(loaded[1], depth_map(kitti_root, items[1]))
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_gt_depths(tmp_path / "nope.npz")


def test_gpu_augment_is_consistent_within_an_item() -> None:
    torch.manual_seed(0)
    base = torch.rand(6, 1, 3, 32, 96)
    frames = base.expand(6, 3, 3, 32, 96).contiguous()
    jittered, targets, _ = GpuAugment()(frames)
    assert jittered.shape == targets.shape == frames.shape
    for i in range(6):
        flipped = torch.equal(targets[i, 0], base[i, 0].flip(-1))
        assert flipped or torch.equal(targets[i, 0], base[i, 0])
        for f in (1, 2):  # same flip and the same jitter for every frame of an item
            assert torch.equal(targets[i, f], targets[i, 0])
            assert torch.allclose(jittered[i, f], jittered[i, 0])
    assert not torch.allclose(jittered, targets)  # some items were jittered


def test_known_pose_needs_a_poses_file(kitti_root: Path) -> None:
    items = scan_frames(kitti_root)[:1]
    with pytest.raises(FileNotFoundError, match=r"pose=known needs .*poses\.txt.*use pose=net"):
        KittiRawDataset(kitti_root, items, height=64, width=192, known_pose=True)


def test_gpu_augment_mirrors_known_poses() -> None:
    torch.manual_seed(0)
    frames = torch.rand(8, 3, 3, 32, 96)
    poses = torch.eye(4).repeat(8, 2, 1, 1)
    poses[..., :3, 3] = torch.tensor([0.3, -0.1, -1.0])  # sideways and forward motion
    _, targets, flipped = GpuAugment()(frames, poses)
    assert flipped is not None
    for i in range(8):
        was_flipped = torch.equal(targets[i], frames[i].flip(-1))
        assert float(flipped[i, 0, 0, 3]) == pytest.approx(-0.3 if was_flipped else 0.3)
        assert float(flipped[i, 0, 2, 3]) == pytest.approx(-1.0)


def test_sides_read_their_own_camera(kitti_stereo_root: Path) -> None:
    items = scan_frames(kitti_stereo_root, sides=("l", "r"))
    assert len(items) == 2 * 2 * 8 and {i.side for i in items} == {"l", "r"}
    left, right = SplitItem(DRIVE, 4, "l"), SplitItem(DRIVE, 4, "r")
    ds = KittiRawDataset(kitti_stereo_root, [left, right], height=64, width=192)
    a, b = ds[0], ds[1]
    # image_03 of the fixture holds mirrored copies of image_02: r must read them, all 3 frames.
    fa, fb = to_unit(a.frames), to_unit(b.frames)
    assert not torch.allclose(fa, fb, atol=0.05)
    assert torch.allclose(fb, fa.flip(-1), atol=1.5 / 255)
    K3 = normalized_intrinsics(kitti_stereo_root, "2011_09_26", "03")
    assert torch.allclose(b.K[:3, :3], torch.as_tensor(K3[:3, :3]) * torch.tensor([[192], [64], [1]]))
    with pytest.raises(ValueError, match="unknown side 'x'"):
        scan_frames(kitti_stereo_root, sides=("x",))


def test_right_gt_is_projected_into_image_03(kitti_stereo_root: Path) -> None:
    """A velodyne point at depth z lands (Tx_02 − Tx_03)/z ≈ 384/z px further right in image_02
    than in image_03 (P_rect's last column holds fx·baseline; its second row a small vertical
    offset); with P_rect_02 used for both sides the maps would be equal and the check fails."""
    gl = depth_map(kitti_stereo_root, SplitItem(DRIVE, 4, "l"))
    gr = depth_map(kitti_stereo_root, SplitItem(DRIVE, 4, "r"))
    assert gr.shape == gl.shape and not np.array_equal(gl, gr)
    calib = read_calib_file(kitti_stereo_root / "2011_09_26" / "calib_cam_to_cam.txt")
    shift_u = calib["P_rect_02"][3] - calib["P_rect_03"][3]
    shift_v = calib["P_rect_02"][7] - calib["P_rect_03"][7]
    assert 380 < shift_u < 390

    def matched(du: float, dv: float) -> float:
        v, u = np.nonzero(gr)
        z = gr[v, u]
        ul, vl = np.round(u + du / z).astype(int), np.round(v + dv / z).astype(int)
        keep = (ul < gl.shape[1] - 1) & (vl > 0) & (vl < gl.shape[0] - 1)
        return float(np.mean([
            np.isclose(gl[r - 1 : r + 2, c - 1 : c + 2], d, rtol=0.02).any()
            for r, c, d in zip(vl[keep], ul[keep], z[keep])
        ]))

    assert matched(shift_u, shift_v) > 0.9
    assert matched(0.0, 0.0) < 0.6  # the unshifted left map does not explain the right one


def test_ragged_gt_round_trip_without_pickle(tmp_path: Path) -> None:
    maps = [np.ones((4, 6), np.float32), 2 * np.ones((5, 7), np.float32)]
    items = [SplitItem("2011_09_26/2011_09_26_drive_0000_sync", f) for f in (1, 2)]
    loaded = load_gt_depths(save_gt_depths(tmp_path / "gt.npz", maps, items=items))
    assert [m.shape for m in loaded] == [(4, 6), (5, 7)] and loaded[1][0, 0] == 2
    pickled = np.empty(2, dtype=object)
    pickled[:] = maps
    np.savez(tmp_path / "md2.npz", data=pickled)  # monodepth2's ragged export
    with pytest.raises(ValueError, match="pickled.*re-export"):
        load_gt_depths(tmp_path / "md2.npz")
