"""Decoded-frame cache: every KITTI frame a sweep needs, decoded and resized once, as one uint8
memory-mapped array per node.

Why: a training item is three full-size PNGs (1242×375) decoded and LANCZOS-resized, ≈ 60 ms
per item on one core, so the PNG path feeds ≈ 16 items/s per core where a GPU step at 640×192,
batch 12, needs ≥ 750 items/s. Every frame is also decoded three times (as target and as either
neighbour). The cache pays the decode once per node; afterwards an item is three slices of a
page-cached array (bench/depth_input.py, docs/benchmarks.md).

Layout: ``<cache dir>/<key>/frames.u8`` (``[N, 3, H, W]`` uint8, channels first so an item is
a contiguous copy) and ``index.json`` (frame →
row, the source fingerprint). The key hashes the root, the resolution and the resize method, so
trials of one sweep share it. The fingerprint hashes every source file's path, size and mtime: a
changed or replaced frame makes the cache stale and it is rebuilt, as it is when a split asks for
frames the cache does not hold (it is then rebuilt with the union). A build runs under an
exclusive file lock (one builder per node; concurrent trials wait and then reuse it), writes into
a temporary folder and renames it into place, so nobody ever reads a half-written cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

RESIZE = "lanczos"  # PIL LANCZOS, as monodepth2's transforms.Resize(ANTIALIAS)
LAYOUT_VERSION = 2
ARRAY, INDEX = "frames.u8", "index.json"


def default_cache_dir() -> Path:
    """Node-local: under the system temp dir (``TMPDIR``), shared by the node's trials."""
    return Path(tempfile.gettempdir()) / "snnsearch_frame_cache"


def cache_key(root: str | Path, height: int, width: int) -> str:
    text = f"{Path(root).resolve()}|{height}x{width}|{RESIZE}|v{LAYOUT_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(paths: Iterable[Path]) -> str:
    """Hash of every source file's path, size and modification time (a few µs per file)."""
    h = hashlib.sha256()
    for path in paths:
        st = path.stat()
        h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def decode(path: str, height: int, width: int) -> np.ndarray:
    """``[H, W, 3]`` uint8: the PNG decoded and LANCZOS-resized (the PNG path's exact pixels)."""
    from PIL import Image

    if not os.path.isfile(path):
        raise FileNotFoundError(f"KITTI frame not found: {path}")
    with Image.open(path) as src:
        img = src.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        return np.array(img, dtype=np.uint8)  # writable copy (torch refuses read-only arrays)


def _decode_rows(args: tuple[str, list[tuple[int, str]], int, int]) -> int:
    array_path, jobs, height, width = args
    out = np.memmap(array_path, dtype=np.uint8, mode="r+")
    frames = out.reshape(-1, 3, height, width)
    for row, path in jobs:
        frames[row] = decode(path, height, width).transpose(2, 0, 1)
    out.flush()
    return len(jobs)


class FrameCache:
    """Read access to a built cache (see :func:`ensure_cache`)."""

    def __init__(self, folder: Path, rows: dict[str, int], height: int, width: int) -> None:
        self.folder, self.rows, self.height, self.width = folder, rows, height, width
        self.array = np.memmap(folder / ARRAY, dtype=np.uint8, mode="r").reshape(
            -1, 3, height, width
        )

    def frame(self, path: Path) -> np.ndarray:
        """``[3, H, W]`` uint8 view of the cached frame decoded from ``path``."""
        row = self.rows.get(str(path))
        if row is None:
            raise KeyError(f"{path} is not in the frame cache {self.folder}")
        return self.array[row]

    def __getstate__(self) -> dict:
        # DataLoader workers re-open the memmap instead of pickling the array.
        return {"folder": self.folder, "rows": self.rows, "height": self.height,
                "width": self.width}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["folder"], state["rows"], state["height"], state["width"])


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_index(folder: Path) -> dict | None:
    try:
        return json.loads((folder / INDEX).read_text())
    except (OSError, ValueError):
        return None


def ensure_cache(
    root: str | Path,
    paths: Sequence[Path],
    *,
    height: int,
    width: int,
    cache_dir: str | Path | None = None,
    workers: int = 1,
) -> FrameCache:
    """A cache holding every frame of ``paths`` at ``height × width``; built if missing or
    stale (changed sources, or frames it lacks), reused otherwise.

    Args:
        root: dataset root (part of the key).
        paths: source PNGs the run will read.
        height, width: training resolution.
        cache_dir: where caches live (default :func:`default_cache_dir`, node-local).
        workers: decoding processes for a build (the trial's CPUs).
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    folder = cache_dir / cache_key(root, height, width)
    wanted = sorted({str(p) for p in paths})
    with _locked(cache_dir / f"{folder.name}.lock"):
        index = _read_index(folder)
        if index is not None and set(wanted) <= set(index["rows"]):
            held = sorted(index["rows"], key=index["rows"].get)
            if index["fingerprint"] == fingerprint(Path(p) for p in held):
                return FrameCache(folder, index["rows"], height, width)
            wanted = sorted(set(wanted) | set(held))  # stale: rebuild everything it held
        elif index is not None:
            wanted = sorted(set(wanted) | set(index["rows"]))  # grow to the union
        _build(folder, wanted, height, width, workers)
        index = _read_index(folder)
        assert index is not None
        return FrameCache(folder, index["rows"], height, width)


def _build(folder: Path, paths: list[str], height: int, width: int, workers: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}_", dir=folder.parent))
    try:
        array_path = tmp / ARRAY
        np.memmap(array_path, dtype=np.uint8, mode="w+",
                  shape=(max(len(paths), 1), 3, height, width)).flush()
        jobs = list(enumerate(paths))
        chunks = [jobs[i::max(workers, 1)] for i in range(max(workers, 1))]
        tasks = [(str(array_path), c, height, width) for c in chunks if c]
        if workers > 1 and len(tasks) > 1:
            with ProcessPoolExecutor(len(tasks)) as pool:
                list(pool.map(_decode_rows, tasks))
        else:
            for task in tasks:
                _decode_rows(task)
        index = {"rows": {p: i for i, p in enumerate(paths)}, "height": height, "width": width,
                 "resize": RESIZE, "fingerprint": fingerprint(Path(p) for p in paths)}
        (tmp / INDEX).write_text(json.dumps(index))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
