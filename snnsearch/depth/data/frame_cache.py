"""Decoded-frame cache: every KITTI frame a sweep needs, decoded and resized once, as one uint8
memory-mapped array per node.

Why: a training item is three full-size PNGs (1242×375) decoded and LANCZOS-resized, ≈ 60 ms
per item on one core, so the PNG path feeds ≈ 16 items/s per core where a GPU step at 640×192,
batch 12, needs ≥ 750 items/s. Every frame is also decoded three times (as target and as either
neighbour). The cache pays the decode once per node; afterwards a batch is one indexed read of a
page-cached array (:meth:`FrameCache.gather`; bench/depth_input.py, docs/benchmarks.md).

Layout: ``<cache>/frames/<key>/frames.u8`` (``[N, 3, H, W]`` uint8, channels first so a frame is
one contiguous row) and ``index.json`` (frame path → row, and each source's size and mtime), in
the user's cache dir (:mod:`snnsearch.cache`, ``$SNNSEARCH_CACHE``). The key hashes the root, the
resolution and the resize method, so trials of one sweep share it.

**Rows never move once written.** A run that needs frames the cache lacks, or whose source PNG
changed (size or mtime), *appends* rows for them and rewrites the index atomically; nothing else is
touched. So a DataLoader worker that reopens the array by path (every worker under the ``spawn``
and ``forkserver`` start methods, the Linux default from Python 3.14) with the row map it was given
reads exactly the frames it was built for, whatever other trials added since; and the cache exists
at every instant of a build (no remove-then-rename window). A stale frame's old row stays as
garbage until ``python -m snnsearch.cache --clear``. Builds run under the entry's exclusive lock;
readers hold its shared "use" lock, so ``--clear`` refuses a cache a run is reading.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np

from snnsearch import cache as user_cache

RESIZE = "lanczos"  # PIL LANCZOS, as monodepth2's transforms.Resize(ANTIALIAS)
LAYOUT_VERSION = 3  # 3: append-only rows, per-source signatures
ARRAY, INDEX = "frames.u8", "index.json"
KIND = "frames"


def default_cache_dir() -> Path:
    """``<user cache>/frames`` (``$SNNSEARCH_CACHE``; node-local, shared by the node's trials)."""
    return user_cache.kind_dir(KIND)


def cache_key(root: str | Path, height: int, width: int) -> str:
    text = f"{Path(root).resolve()}|{height}x{width}|{RESIZE}|v{LAYOUT_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def signature(path: Path) -> str:
    """A source file's size and modification time (a few µs per file)."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def fingerprint(paths: Iterable[Path]) -> str:
    """Hash of every source file's path and signature."""
    h = hashlib.sha256()
    for path in paths:
        h.update(f"{path}|{signature(path)}\n".encode())
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
    """Read access to a built cache (see :func:`ensure_cache`).

    Pickled (into DataLoader workers) as its folder and row map; the copy reopens the array by
    path, which is safe because rows are append-only. Each instance holds the entry's shared use
    lock while it lives.
    """

    def __init__(self, folder: Path, rows: dict[str, int], height: int, width: int) -> None:
        self.folder, self.rows, self.height, self.width = folder, rows, height, width
        self._use: IO[str] | None = user_cache.use_lock(folder)
        self.array = np.memmap(folder / ARRAY, dtype=np.uint8, mode="r").reshape(
            -1, 3, height, width
        )
        top = max(rows.values(), default=-1)
        if top >= len(self.array):
            raise ValueError(f"frame cache {folder} holds {len(self.array)} rows, its index "
                             f"names row {top}; clear it (python -m snnsearch.cache --clear)")

    def row(self, path: Path) -> int:
        row = self.rows.get(str(path))
        if row is None:
            raise KeyError(f"{path} is not in the frame cache {self.folder}")
        return row

    def frame(self, path: Path) -> np.ndarray:
        """``[3, H, W]`` uint8 view of the cached frame decoded from ``path``."""
        return self.array[self.row(path)]

    def gather(self, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Copies ``array[rows]`` into ``out`` (``[len(rows), 3, H, W]`` uint8) in one indexed
        read. ``mode="clip"`` because ``np.take``'s default ``raise`` mode buffers the whole
        result and copies it twice; rows were checked when the item table was built."""
        return np.take(self.array, rows, axis=0, out=out, mode="clip")

    def close(self) -> None:
        if self._use is not None:
            self._use.close()
            self._use = None

    def __getstate__(self) -> dict:
        # DataLoader workers re-open the memmap instead of pickling the array.
        return {"folder": self.folder, "rows": self.rows, "height": self.height,
                "width": self.width}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["folder"], state["rows"], state["height"], state["width"])


def _read_index(folder: Path) -> dict | None:
    try:
        index = json.loads((folder / INDEX).read_text())
        return index if index.get("layout") == LAYOUT_VERSION else None
    except (OSError, ValueError, AttributeError):
        return None


def _write_index(folder: Path, index: dict) -> None:
    """Index written beside and renamed over the old one: readers see the old or the new."""
    tmp = folder / f".{INDEX}.{os.getpid()}"
    tmp.write_text(json.dumps(index))
    os.replace(tmp, folder / INDEX)


def ensure_cache(
    root: str | Path,
    paths: Sequence[Path],
    *,
    height: int,
    width: int,
    cache_dir: str | Path | None = None,
    workers: int = 1,
) -> FrameCache:
    """A cache holding every frame of ``paths`` at ``height × width``: frames it lacks or whose
    source changed are decoded and appended; the rest is reused as is.

    Args:
        root: dataset root (part of the key).
        paths: source PNGs the run will read.
        height, width: training resolution.
        cache_dir: where caches live (default :func:`default_cache_dir`).
        workers: decoding processes for a build (the trial's CPUs).
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    folder = cache_dir / cache_key(root, height, width)
    with user_cache.build_lock(folder):
        index = _read_index(folder)
        if index is None:
            index = {"layout": LAYOUT_VERSION, "height": height, "width": width,
                     "resize": RESIZE, "count": 0, "rows": {}, "sources": {}}
        todo: list[tuple[str, str]] = []
        for p in sorted({str(p) for p in paths}):
            if not os.path.isfile(p):
                raise FileNotFoundError(f"KITTI frame not found: {p}")
            sig = signature(Path(p))
            if index["sources"].get(p) != sig:
                todo.append((p, sig))
        if todo:
            _append(folder, index, todo, workers)
            user_cache.describe(folder, f"decoded depth frames of {Path(root).resolve()} at "
                                f"{width}x{height} ({index['count']} rows)",
                                root=Path(root).resolve(), height=height, width=width)
        return FrameCache(folder, dict(index["rows"]), height, width)


def _append(folder: Path, index: dict, todo: list[tuple[str, str]], workers: int) -> None:
    """Decodes ``todo`` into new rows after the last indexed one, then publishes the index."""
    folder.mkdir(parents=True, exist_ok=True)
    array_path = folder / ARRAY
    frame_bytes = 3 * index["height"] * index["width"]
    start = index["count"]
    with open(array_path, "a+b") as handle:
        # Rows past the index are a crashed build's leftovers (nobody can reference them).
        handle.truncate((start + len(todo)) * frame_bytes)
    jobs = [(start + i, p) for i, (p, _) in enumerate(todo)]
    n = max(1, min(workers, len(jobs)))
    tasks = [(str(array_path), jobs[i::n], index["height"], index["width"]) for i in range(n)]
    if n > 1:
        with ProcessPoolExecutor(n) as pool:
            list(pool.map(_decode_rows, tasks))
    else:
        _decode_rows(tasks[0])
    for row, (p, sig) in zip(range(start, start + len(todo)), todo):
        index["rows"][p] = row
        index["sources"][p] = sig
    index["count"] = start + len(todo)
    _write_index(folder, index)
