"""The user's snnsearch cache: derived data that can always be rebuilt from its sources.

What lives here (one folder per entry, each with an ``entry.json`` saying what it is for):

- ``frames/<key>/``: decoded-frame caches of the depth task (KITTI or synthetic PNGs decoded and
  resized once; :mod:`snnsearch.depth.data.frame_cache`);
- ``synthetic/<key>/``: generated synthetic driving scenes (:mod:`snnsearch.depth.data.synthetic_scenes`).

Where: ``$SNNSEARCH_CACHE``, else ``$XDG_CACHE_HOME/snnsearch``, else ``~/.cache/snnsearch`` (the
XDG convention pip and torch follow). Not the temp dir: entries are reused across sweeps and
reboots, and they are listed and cleared with::

    python -m snnsearch.cache --list
    python -m snnsearch.cache --clear [KIND/KEY ...]

Builds and readers hold ``flock`` locks in ``<kind>/.locks/`` (kept apart from the entries so that
clearing an entry never deletes a lock somebody holds): a builder holds ``<key>.lock``
exclusively, a process reading a frame cache holds ``<key>.use`` shared. ``--clear`` takes both without
waiting and refuses an entry that is being built or read.

This is a root module: it imports nothing of the package, so every layer may use it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

CACHE_ENV = "SNNSEARCH_CACHE"
ENTRY_FILE = "entry.json"
LOCKS = ".locks"


def cache_root() -> Path:
    """``$SNNSEARCH_CACHE``, ``$XDG_CACHE_HOME/snnsearch`` or ``~/.cache/snnsearch``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "snnsearch"


def kind_dir(kind: str, root: Path | None = None) -> Path:
    """The folder holding every entry of ``kind`` (``frames``, ``synthetic``)."""
    return (root or cache_root()) / kind


def _lock_path(folder: Path, suffix: str) -> Path:
    """``<kind>/.locks/<key>.<suffix>`` for an entry folder ``<kind>/<key>``."""
    return folder.parent / LOCKS / f"{folder.name}.{suffix}"


@contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock of one entry while it is built or grown (one builder per node; others
    wait, then reuse what it built)."""
    path = _lock_path(folder, "lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def use_lock(folder: Path) -> IO[str]:
    """A shared lock held while a process reads the entry (released when the handle is closed or
    the process ends); ``--clear`` refuses an entry somebody holds it on."""
    path = _lock_path(folder, "use")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")  # noqa: SIM115 - the caller keeps it open for its reads
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def describe(folder: Path, purpose: str, **details: Any) -> None:
    """Writes ``entry.json`` (what the entry is for, and from which sources), atomically."""
    tmp = folder / f".{ENTRY_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps({"purpose": purpose, **details}, indent=1, default=str))
    os.replace(tmp, folder / ENTRY_FILE)


@dataclass(frozen=True)
class Entry:
    """One cache entry: ``<kind>/<key>``, its size and what it is for."""

    kind: str
    key: str
    folder: Path
    bytes: int
    purpose: str

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.key}"


def folder_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (sparse files count what they use)."""
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    for sub, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(sub) / name).lstat().st_blocks * 512
            except OSError:
                continue  # removed while we walked
    return total


def entries(root: Path | None = None) -> list[Entry]:
    """Every entry under ``root`` (temporary build folders, starting with ``.``, are skipped)."""
    root = root or cache_root()
    found = []
    for kind in sorted(p for p in root.glob("*") if p.is_dir() and not p.name.startswith(".")):
        for folder in sorted(p for p in kind.iterdir() if p.is_dir()
                             and not p.name.startswith(".")):
            try:
                purpose = str(json.loads((folder / ENTRY_FILE).read_text())["purpose"])
            except (OSError, ValueError, KeyError, TypeError):
                purpose = "unknown (no entry.json; not written by snnsearch)"
            found.append(Entry(kind.name, folder.name, folder, folder_bytes(folder), purpose))
    return found


def total_bytes(root: Path | None = None) -> int:
    root = root or cache_root()
    return folder_bytes(root) if root.exists() else 0


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # unreachable; keeps type checkers content


def summary_line(root: Path | None = None) -> str:
    """``cache: <root> (<size>, <n> entries)``: what a sweep prints at its start."""
    root = root or cache_root()
    n = len(entries(root)) if root.exists() else 0
    return (f"cache: {root} ({human(total_bytes(root))}, {n} entries; "
            "python -m snnsearch.cache --list/--clear)")


def _try_lock(path: Path, mode: int) -> IO[str] | None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")  # noqa: SIM115 - closed by the caller
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def clear_entry(entry: Entry) -> str | None:
    """Removes ``entry``; returns why it was refused (being built or read), None when removed."""
    build = _try_lock(_lock_path(entry.folder, "lock"), fcntl.LOCK_EX)
    if build is None:
        return f"{entry.name} is being built by a running process"
    try:
        use = _try_lock(_lock_path(entry.folder, "use"), fcntl.LOCK_EX)
        if use is None:
            return f"{entry.name} is in use by a running process (a training run reads it)"
        try:
            shutil.rmtree(entry.folder)
        finally:
            use.close()
    finally:
        build.close()
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snnsearch.cache",
        description=f"List or clear snnsearch's cache (${CACHE_ENV}, default ~/.cache/snnsearch): "
                    "decoded depth frames and synthetic scenes, rebuilt on demand.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--list", action="store_true", help="entries, sizes and what each is for")
    group.add_argument("--clear", nargs="*", metavar="KIND/KEY",
                       help="remove these entries (default: all); refuses one being built or read")
    args = parser.parse_args(argv)
    root = cache_root()
    found = entries(root) if root.exists() else []
    if args.list:
        print(f"{root}: {human(total_bytes(root))} in {len(found)} entries")
        for e in found:
            print(f"  {e.name:<40} {human(e.bytes):>10}  {e.purpose}")
        return 0
    by_name = {e.name: e for e in found}
    unknown = [n for n in args.clear if n not in by_name]
    if unknown:
        print(f"error: no cache entry {unknown[0]!r} under {root}; see python -m snnsearch.cache "
              "--list", file=sys.stderr)
        return 2
    refused = []
    for entry in [by_name[n] for n in args.clear] if args.clear else found:
        reason = clear_entry(entry)
        if reason is None:
            print(f"removed {entry.name} ({human(entry.bytes)})")
        else:
            refused.append(reason)
    for reason in refused:
        print(f"error: {reason}; it was kept (retry when it has finished)", file=sys.stderr)
    return 2 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
