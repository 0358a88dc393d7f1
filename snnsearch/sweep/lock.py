"""One driver per sweep directory: a lock file naming its holder (host, PID, start time).

Two drivers on one sweep directory would share Ray's experiment state and overwrite each other's
``trials.parquet``, ``sweep.json`` and MLflow parent-run id (last writer wins), so the second is
refused. The lock is a file created exclusively (``O_CREAT | O_EXCL``, atomic on local disks and
NFSv3+); object stores have no exclusive create, so there it is written and read back, which
catches all but a race within one round trip.

A lock is stale when its holder is gone: same host and the PID no longer runs (or runs another
program, checked through the process start time). A lock held from another host cannot be
probed; the refusal names that host and PID and says how to remove the lock once that driver
is known to be gone.
"""

from __future__ import annotations

import json
import os
import socket
import time
from types import TracebackType

from snnsearch.storage import sweepdir as _storage

LOCK_FILE = ".snnsearch.lock"


def _process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), to tell a reused PID apart."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    now = _process_start(pid)
    return started is None or now is None or now == started


class SweepLock:
    """Exclusive lock on a sweep directory, held while a driver runs it.

    Args:
        sweep_dir: local path or pyarrow-fs URI of the sweep.
    """

    def __init__(self, *, sweep_dir: str) -> None:
        self.sweep_dir = sweep_dir
        self.path = _storage.join(sweep_dir, LOCK_FILE)
        self.holder = {
            "host": socket.gethostname(), "pid": os.getpid(),
            "pid_start": _process_start(os.getpid()), "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        self.held = False
        self._created: list[str] = []  # local directories this lock created, deepest last

    def acquire(self) -> None:
        """Takes the lock (replacing a stale one).

        Raises:
            ValueError: another live driver holds it (one line naming host and PID).
        """
        for _ in range(2):
            if self._create():
                self.held = True
                return
            other = self._read()
            if other is None:
                continue  # released between our create and read: try once more
            if not self._stale(other):
                raise ValueError(self._refusal(other))
            self._remove()
        raise ValueError(f"could not take the sweep lock {self.path}; retry")

    def release(self) -> None:
        """Removes the lock if this driver holds it, and the directories the lock created if
        nothing else was written into them (a refused sweep leaves no trace in the storage)."""
        if self.held and (self._read() or {}).get("pid") == self.holder["pid"]:
            self._remove()
        self.held = False
        for directory in reversed(self._created):
            try:
                os.rmdir(directory)
            except OSError:
                break  # not empty: the sweep wrote something, keep it
        self._created = []

    def __enter__(self) -> SweepLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _create(self) -> bool:
        data = json.dumps(self.holder).encode()
        if _storage.is_uri(self.path):
            if _storage.exists(self.path):
                return False
            _storage.write_bytes(self.path, data)
            return (self._read() or {}).get("pid") == self.holder["pid"]
        self._makedirs(os.path.dirname(self.path))
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return True

    def _makedirs(self, directory: str) -> None:
        missing = []
        while directory and not os.path.exists(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        for path in reversed(missing):
            os.makedirs(path, exist_ok=True)
            self._created.append(path)

    def _read(self) -> dict | None:
        try:
            text = _storage.read_text(self.path)
        except OSError:
            return None
        if text is None:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return {"host": "?", "pid": None}  # half-written by a dying driver: stale below
        return data if isinstance(data, dict) else {"host": "?", "pid": None}

    def _stale(self, other: dict) -> bool:
        pid = other.get("pid")
        if not isinstance(pid, int):
            return True
        if other.get("host") != self.holder["host"]:
            return False
        return not _alive(pid, other.get("pid_start"))

    def _remove(self) -> None:
        fs, fs_path = _storage.resolve(self.path)
        try:
            fs.delete_file(fs_path)
        except (OSError, FileNotFoundError):
            pass

    def _refusal(self, other: dict) -> str:
        where = (f"host {other.get('host')}, PID {other.get('pid')}, since "
                 f"{other.get('since', '?')}")
        fix = ("wait for it or stop it" if other.get("host") == self.holder["host"] else
               f"if that driver is gone, delete {self.path}")
        return (f"sweep {self.sweep_dir} is in use by another driver ({where}); {fix}, or pick "
                "another --name")
