"""Synthetic KITTI-layout scenes: layout, determinism, exact GT, and geometry a net can learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnsearch.depth.data.gt import depth_map, load_gt_depths
from snnsearch.depth.data.kitti import KittiRawDataset, normalized_intrinsics, read_split, to_unit
from snnsearch.depth.data.synthetic_scenes import (
    DATE,
    SyntheticSpec,
    _intrinsics,
    _Scene,
    ensure_synthetic,
)
from snnsearch.depth.geometry import warp_source
from snnsearch.depth.losses import photometric_error

SPEC = SyntheticSpec(num_scenes=2, frames_per_scene=5, val_scenes=1, height=64, width=192, seed=3)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):
    return ensure_synthetic(tmp_path_factory.mktemp("synth") / "data", SPEC)


def test_layout_splits_and_gt(synth) -> None:
    drive = synth.root / DATE / f"{DATE}_drive_0000_sync"
    assert min(p.name for p in (drive / "image_02" / "data").iterdir()) == "0000000000.png"
    assert (drive / "velodyne_points" / "data" / "0000000004.bin").is_file()
    train, val = read_split(synth.train_split), read_split(synth.val_split)
    assert [i.frame for i in train] == [1, 2, 3] and [i.frame for i in val] == [1, 2, 3]
    gts = load_gt_depths(synth.gt_path)
    assert len(gts) == len(val) and gts[0].shape == (64, 192)
    assert 3.0 < gts[0].min() and gts[0].max() < 80.0
    K = normalized_intrinsics(synth.root, DATE)
    assert K[0, 0] == pytest.approx(0.58) and K[1, 1] == pytest.approx(1.92)
    ds = KittiRawDataset(synth.root, train, height=32, width=96)
    assert ds[0].frames.shape == (3, 3, 32, 96)


def test_reuse_and_conflicting_parameters(synth) -> None:
    stamp = synth.gt_path.stat().st_mtime_ns
    assert ensure_synthetic(synth.root, SPEC).gt_path.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="holds other synthetic scenes"):
        ensure_synthetic(synth.root, SyntheticSpec(seed=4))


def test_velodyne_projection_matches_rendered_depth(synth) -> None:
    item = read_split(synth.val_split)[0]
    sparse, dense = depth_map(synth.root, item), load_gt_depths(synth.gt_path)[0]
    hit = sparse > 0
    assert hit.sum() > 1000
    # monodepth2's projection stores pixel (u, v) at (u-1, v-1) (KITTI devkit convention).
    np.testing.assert_allclose(sparse[hit], dense[1:, 1:][hit[:-1, :-1]], rtol=1e-4)


def test_same_seed_same_scene(tmp_path: Path) -> None:
    spec = SyntheticSpec(num_scenes=2, frames_per_scene=3, height=32, width=96, seed=9)
    a, b = ensure_synthetic(tmp_path / "a", spec), ensure_synthetic(tmp_path / "b", spec)
    img = f"{DATE}/{DATE}_drive_0001_sync/image_02/data/0000000001.png"
    assert (a.root / img).read_bytes() == (b.root / img).read_bytes()


def test_true_depth_and_motion_explain_the_next_frame() -> None:
    """The scenes are learnable: the GT depth and the known forward motion reproduce frame t+1
    from frame t far better than a wrong (constant) depth does."""
    h, w = 64, 192
    scene, K = _Scene(np.random.default_rng(0)), _intrinsics(h, w)
    img0, depth0 = scene.render(2.0, K, h, w)
    img1, _ = scene.render(2.0 + scene.speed, K, h, w)

    def to_t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255

    K4 = torch.eye(4)[None]
    K4[0, :3, :3] = torch.from_numpy(K).float()
    source_T_target = torch.eye(4)[None]
    source_T_target[0, 2, 3] = -scene.speed  # the source camera is `speed` metres further on
    true = warp_source(to_t(img1), torch.from_numpy(depth0)[None, None], source_T_target, K4)
    flat = warp_source(to_t(img1), torch.full((1, 1, h, w), 20.0), source_T_target, K4)
    inner = (slice(None), slice(None), slice(8, -8), slice(16, -16))
    err_true = photometric_error(true, to_t(img0))[inner].mean()
    err_flat = photometric_error(flat, to_t(img0))[inner].mean()
    assert err_true < 0.5 * err_flat


def test_known_poses_and_gt_depth_explain_the_next_frame(synth) -> None:
    """``poses.txt`` (written by the generator, read by ``known_pose`` datasets) follows the warp's
    target→source convention: with the GT depth it reproduces the +1 frame."""
    val = read_split(synth.val_split)
    ds = KittiRawDataset(synth.root, val, height=64, width=192, known_pose=True)
    sample = ds[0]
    assert sample.poses is not None and sample.poses.shape == (2, 4, 4)
    back, ahead = sample.poses[0], sample.poses[1]  # sources -1 and +1
    assert ahead[2, 3] < 0 < back[2, 3] and torch.allclose(ahead[:3, :3], torch.eye(3))
    assert float(ahead[2, 3]) == pytest.approx(-float(back[2, 3]), rel=1e-5)
    gt = torch.from_numpy(load_gt_depths(synth.gt_path)[0])[None, None]
    frames = to_unit(sample.frames)
    target, source, K = frames[0][None], frames[2][None], sample.K[None]
    inner = (slice(None), slice(None), slice(8, -8), slice(16, -16))
    err_true = photometric_error(warp_source(source, gt, ahead[None], K), target)[inner].mean()
    err_flat = photometric_error(
        warp_source(source, torch.full_like(gt, 20.0), ahead[None], K), target
    )[inner].mean()
    assert err_true < 0.5 * err_flat


@pytest.mark.parametrize("workers", [0, 1])
def test_a_gathered_batch_carries_each_items_known_poses(
    synth, tmp_path: Path, workers: int
) -> None:
    """Whole batches (frames gathered, K/indices/poses sent by value from a worker) equal the
    per-item samples, known camera motion included, in the order asked for."""
    from torch.utils.data import DataLoader

    from snnsearch.depth.data.batches import pass_batch
    from snnsearch.depth.data.frame_cache import ensure_cache
    from snnsearch.depth.data.kitti import frame_paths

    items = read_split(synth.train_split)
    cache = ensure_cache(synth.root, frame_paths(synth.root, items), height=64, width=192,
                         cache_dir=tmp_path / "c")
    data = KittiRawDataset(synth.root, items, height=64, width=192, known_pose=True, cache=cache)
    for batch in DataLoader(data, batch_sampler=[[2, 0], [1]], num_workers=workers,
                            collate_fn=pass_batch):
        assert isinstance(batch.poses, torch.Tensor) and isinstance(batch.K, torch.Tensor)
        for slot, i in enumerate(batch.idx.tolist()):
            assert torch.equal(batch.poses[slot], data[i].poses)
            assert torch.equal(batch.K[slot], data[i].K)
            assert torch.equal(batch.frames[slot], data[i].frames)
