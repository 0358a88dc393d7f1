"""The decoded-frame cache on the real KITTI sample: the PNG path's exact pixels, rebuilt when
stale or incomplete, built once under concurrency."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
import torch

from snnsearch.depth.data import frame_cache as FC
from snnsearch.depth.data.kitti import KittiRawDataset, frame_paths, scan_frames


@pytest.fixture
def kitti_copy(kitti_sample: Path, tmp_path: Path) -> Path:
    """A writable copy of the sample (PNGs and calibration only)."""
    root = tmp_path / "kitti"
    shutil.copytree(kitti_sample, root, ignore=shutil.ignore_patterns("velodyne_points"))
    return root


def test_cached_items_equal_the_png_path(kitti_copy: Path, tmp_path: Path) -> None:
    items = scan_frames(kitti_copy)[:3]
    cache = FC.ensure_cache(kitti_copy, frame_paths(kitti_copy, items), height=64, width=192,
                            cache_dir=tmp_path / "c")
    assert len(cache.rows) == 5  # frames 0..4: each decoded once, not three times
    cached = KittiRawDataset(kitti_copy, items, height=64, width=192, cache=cache)
    plain = KittiRawDataset(kitti_copy, items, height=64, width=192)
    for i in range(3):
        assert torch.equal(cached[i].frames, plain[i].frames)
        assert torch.equal(cached[i].K, plain[i].K)
    with pytest.raises(ValueError, match="frame cache is 64×192, not 96×320"):
        KittiRawDataset(kitti_copy, items, height=96, width=320, cache=cache)


def test_stale_or_incomplete_caches_are_rebuilt(
    kitti_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[int] = []
    real_build = FC._build
    monkeypatch.setattr(FC, "_build", lambda f, p, h, w, n: (builds.append(len(p)),
                                                             real_build(f, p, h, w, n)))
    items = scan_frames(kitti_copy)
    first = frame_paths(kitti_copy, items[:2])
    FC.ensure_cache(kitti_copy, first, height=64, width=192, cache_dir=tmp_path / "c")
    FC.ensure_cache(kitti_copy, first[:2], height=64, width=192, cache_dir=tmp_path / "c")
    assert builds == [4]  # reused: a subset of what it holds
    FC.ensure_cache(kitti_copy, frame_paths(kitti_copy, items[5:6]), height=64, width=192,
                    cache_dir=tmp_path / "c")
    assert builds == [4, 7]  # grown to the union (frames 0-3 and 5-7)
    # A frame replaced on disk (new content, new mtime): stale, rebuilt with the new pixels.
    src = first[0]
    shutil.copy(first[3], src)
    os.utime(src, ns=(1, 1))
    cache = FC.ensure_cache(kitti_copy, first, height=64, width=192, cache_dir=tmp_path / "c")
    assert builds == [4, 7, 7]
    assert (cache.frame(src) == cache.frame(first[3])).all()
    other = FC.ensure_cache(kitti_copy, first, height=32, width=96, cache_dir=tmp_path / "c")
    assert other.folder != cache.folder and builds[-1] == 4  # keyed by resolution


def test_concurrent_trials_build_once(
    kitti_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[int] = []
    real_build = FC._build
    monkeypatch.setattr(FC, "_build", lambda f, p, h, w, n: (builds.append(len(p)),
                                                             real_build(f, p, h, w, n)))
    paths = frame_paths(kitti_copy, scan_frames(kitti_copy)[:3])
    caches: list[FC.FrameCache] = []
    threads = [
        threading.Thread(target=lambda: caches.append(FC.ensure_cache(
            kitti_copy, paths, height=64, width=192, cache_dir=tmp_path / "c")))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == [5] and len(caches) == 3
    assert all((c.array == caches[0].array).all() for c in caches)
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".")]  # no tmp left
