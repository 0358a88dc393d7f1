"""The decoded-frame cache on the real KITTI sample: the PNG path's exact pixels, rows that never
move (workers that reopen it by path read their own frames), built once under concurrency, and
a batch as one gather equal to the per-item PNG path."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from snnsearch.depth.data import frame_cache as FC
from snnsearch.depth.data.kitti import (
    KittiRawDataset,
    frame_paths,
    image_path,
    load_image,
    scan_frames,
)


@pytest.fixture
def kitti_copy(kitti_sample: Path, tmp_path: Path) -> Path:
    """A writable copy of the sample (PNGs and calibration only)."""
    root = tmp_path / "kitti"
    shutil.copytree(kitti_sample, root, ignore=shutil.ignore_patterns("velodyne_points"))
    return root


def _decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every frame the cache decodes (builds run in-process with ``workers=1``)."""
    seen: list[str] = []
    real = FC.decode
    monkeypatch.setattr(FC, "decode", lambda p, h, w: (seen.append(p), real(p, h, w))[1])
    return seen


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


def test_missing_or_changed_frames_are_appended(
    kitti_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = _decodes(monkeypatch)
    items = scan_frames(kitti_copy)
    first = frame_paths(kitti_copy, items[:2])
    a = FC.ensure_cache(kitti_copy, first, height=64, width=192, cache_dir=tmp_path / "c")
    FC.ensure_cache(kitti_copy, first[:2], height=64, width=192, cache_dir=tmp_path / "c")
    assert len(decoded) == 4  # reused: a subset of what it holds
    b = FC.ensure_cache(kitti_copy, frame_paths(kitti_copy, items[5:6]), height=64, width=192,
                        cache_dir=tmp_path / "c")
    assert len(decoded) == 7  # only frames 5-7 were decoded, appended after 0-3
    assert all(b.rows[p] == row for p, row in a.rows.items())  # old rows did not move
    # A frame replaced on disk (new content, new mtime): decoded again into a new row; the old
    # row keeps the old pixels for readers that hold the old row map.
    src = first[0]
    old_pixels = a.frame(src).copy()
    shutil.copy(first[3], src)
    os.utime(src, ns=(1, 1))
    cache = FC.ensure_cache(kitti_copy, first, height=64, width=192, cache_dir=tmp_path / "c")
    assert len(decoded) == 8 and cache.rows[str(src)] == 7
    assert (cache.frame(src) == cache.frame(first[3])).all()
    assert (FC.FrameCache(a.folder, a.rows, 64, 192).frame(src) == old_pixels).all()
    other = FC.ensure_cache(kitti_copy, first, height=32, width=96, cache_dir=tmp_path / "c")
    assert other.folder != cache.folder and len(decoded) == 12  # keyed by resolution


def test_a_spawned_worker_reads_its_frames_after_another_run_grew_the_cache(
    kitti_copy: Path, tmp_path: Path
) -> None:
    """The review's case: the val set's cache is grown by another trial (frames that sort
    before it); a DataLoader worker started with ``spawn`` reopens the cache by path with the row
    map it was given. With re-sorted rows it read other (training) frames."""
    items = scan_frames(kitti_copy)
    val_items = items[5:7]
    cache = FC.ensure_cache(kitti_copy, frame_paths(kitti_copy, val_items), height=64,
                            width=192, cache_dir=tmp_path / "c")
    val = KittiRawDataset(kitti_copy, val_items, height=64, width=192, cache=cache)
    FC.ensure_cache(kitti_copy, frame_paths(kitti_copy, items[:3]), height=64, width=192,
                    cache_dir=tmp_path / "c")  # another trial grows it with training frames
    loader = DataLoader(val, batch_size=None, num_workers=1, multiprocessing_context="spawn")
    got = [sample.frames for sample in loader]
    plain = KittiRawDataset(kitti_copy, val_items, height=64, width=192)
    assert all(torch.equal(g, plain[i].frames) for i, g in enumerate(got))


def test_the_cache_exists_throughout_a_growth(
    kitti_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker may reopen the cache at any instant of another run's build: at every rename
    the build makes, the existing cache opens by path and holds its frames (a build that
    removed the old folder before renaming the new one left a window with no cache)."""
    items = scan_frames(kitti_copy)
    cache = FC.ensure_cache(kitti_copy, frame_paths(kitti_copy, items[4:6]), height=64,
                            width=192, cache_dir=tmp_path / "c")
    expected = {p: cache.frame(Path(p)).copy() for p in cache.rows}
    checked: list[str] = []
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        reopened = FC.FrameCache(cache.folder, cache.rows, 64, 192)
        assert all((reopened.frame(Path(p)) == f).all() for p, f in expected.items())
        checked.append(str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    FC.ensure_cache(kitti_copy, frame_paths(kitti_copy, items[:3]), height=64, width=192,
                    cache_dir=tmp_path / "c")
    assert checked  # the build did rename something, and the cache was whole each time


def test_concurrent_trials_build_once(
    kitti_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = _decodes(monkeypatch)
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
    assert len(decoded) == 5 and len(caches) == 3
    assert all((c.array == caches[0].array).all() for c in caches)
    assert not [p for p in (tmp_path / "c").rglob(".*") if p.name != ".locks"
                and p.parent.name != ".locks"]  # no temporary file left


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_a_batch_is_one_gather_equal_to_the_png_path(
    kitti_stereo_root: Path, tmp_path: Path, workers: int
) -> None:
    """Sorted batches of a seeded shuffle, gathered whole (in a worker: into reused shared
    memory) hold the PNG path's exact frames and K for the items their ``idx`` names; un-sorted
    by ``idx`` they are the shuffle's batches in the shuffle's order."""
    from snnsearch.depth.data.batches import pass_batch
    from snnsearch.depth.state import EpochShuffle, SortedBatches

    items = scan_frames(kitti_stereo_root, sides=("l", "r"))  # 2 drives x 2 cameras: 32 items
    cache = FC.ensure_cache(kitti_stereo_root, frame_paths(kitti_stereo_root, items), height=64,
                            width=192, cache_dir=tmp_path / "c")
    data = KittiRawDataset(kitti_stereo_root, items, height=64, width=192, cache=cache)
    png = {p: load_image(p, 64, 192) for p in frame_paths(kitti_stereo_root, items)}
    shuffle = EpochShuffle(len(data), seed=3)
    loader = DataLoader(data, batch_sampler=SortedBatches(shuffle, batch_size=5),
                        num_workers=workers, collate_fn=pass_batch,
                        persistent_workers=workers > 0)
    for epoch in (1, 2):  # 7 batches per epoch: more than a worker's ring of buffers
        shuffle.set_epoch(epoch)
        order = list(shuffle)
        for n, batch in enumerate(loader):
            idx = batch.idx.tolist()
            assert idx == sorted(order[5 * n: 5 * n + 5])
            for slot, i in enumerate(idx):
                item = items[i]
                want = torch.stack([png[image_path(kitti_stereo_root, item, item.frame + k)]
                                    for k in data.frame_ids])
                assert torch.equal(batch.frames[slot], want)
                assert torch.equal(batch.K[slot], data[i].K)
            unsorted = [idx.index(i) for i in order[5 * n: 5 * n + 5]]
            assert torch.equal(batch.frames[unsorted],
                               torch.stack([data[i].frames for i in order[5 * n: 5 * n + 5]]))
    if workers:  # each ring slot's storage crossed once; later batches named it by key
        from snnsearch.depth.data import batches as B

        ours = [k for k in B._RECEIVED if k[0] in {w.pid for w in loader._iterator._workers}]
        assert 0 < len(ours) <= workers * data.buffers.ring * 2  # 2 shapes: 5 and the last 2
    whole = data.__getitems__([9, 2, 30, 2])  # any order (and repeats) is kept as given
    assert whole.idx.tolist() == [9, 2, 30, 2]
    assert torch.equal(whole.frames, torch.stack([data[i].frames for i in (9, 2, 30, 2)]))


def test_a_worker_sends_a_ring_slot_once_then_its_key() -> None:
    """The first pickle of a slot carries its shared storage; later ones only the key, which the
    training process resolves to the tensor it already maps; slots of exited workers are let
    go."""
    import io
    import os
    import pickle
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing

    from snnsearch.depth.data import batches as B

    def dumped(obj: object) -> bytes:
        buf = io.BytesIO()
        ForkingPickler(buf, pickle.HIGHEST_PROTOCOL).dump(obj)
        return buf.getvalue()

    slot = B._shared((2, 3, 8, 8))
    slot.fill_(7)
    key = (os.getpid(), "nonce", 0, (2, 3, 8, 8))
    first, later = dumped(B._SlotRef(key, slot)), dumped(B._SlotRef(key, None))
    assert len(later) < 200 and b"rebuild_storage" in first and b"rebuild_storage" not in later
    received = pickle.loads(first)
    assert torch.equal(received, slot) and pickle.loads(later) is received
    with pytest.raises(RuntimeError, match="unknown here"):
        pickle.loads(dumped(B._SlotRef((os.getpid(), "other", 0, ()), None)))
    dead = (2**22 + 12345, "gone", 0, ())  # beyond pid_max: no such process
    B._RECEIVED[dead] = slot
    B._register_slot((os.getpid(), "nonce", 1, ()), slot)
    assert dead not in B._RECEIVED and key in B._RECEIVED
