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

Two races are closed locally (issue 19):

- **A half-written lock.** The holder's JSON is written to a private temporary file first and
  published with ``os.link`` (atomic, fails if the lock exists), so a reader never sees a lock
  between its create and its write. A lock that is still not valid JSON (an older driver, or a
  filesystem without hard links where ``O_EXCL`` + write is the fallback) is judged stale only
  once it is older than :data:`HALF_WRITTEN_GRACE_S`; a younger one is being written.
- **Two drivers taking over one stale lock.** Removing a stale lock and creating one's own are
  two steps; a second driver that judged the same lock stale could delete the first one's fresh
  lock. A take-over therefore holds ``.snnsearch.lock.takeover`` (created with ``O_EXCL``), reads
  the lock again under it and removes it only if it is byte for byte the one judged stale.
  A take-over file left by a driver killed within those milliseconds is stale once its holder is
  gone or it is older than :data:`TAKEOVER_STALE_S`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from types import TracebackType

from snnsearch.storage import sweepdir as _storage

LOCK_FILE = ".snnsearch.lock"
TAKEOVER_SUFFIX = ".takeover"
HALF_WRITTEN_GRACE_S = 30.0
TAKEOVER_STALE_S = 30.0
_ATTEMPTS = 400
_PATIENCE_S = 3.0  # how long a driver waits for a lock being written or taken over


def _process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), to tell a reused PID apart."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _parse(raw: bytes) -> dict | None:
    """The lock's holder, or None if the bytes are not a JSON object (half-written)."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _read_local(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _publish(path: str, data: bytes) -> bool:
    """Creates ``path`` holding ``data`` if it does not exist, all at once: written to a private
    file, then hard-linked into place (``link`` fails if ``path`` exists, atomic on local disks
    and NFS). Where hard links are not supported, ``O_EXCL`` create + write. False if it exists."""
    tmp = f"{path}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this filesystem (some FUSE/SMB mounts)
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return True


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
        """Takes the lock (replacing a stale one, see the module docstring).

        Raises:
            ValueError: another live driver holds it (one line naming host and PID).
        """
        deadline = time.monotonic() + _PATIENCE_S
        for attempt in range(_ATTEMPTS):
            if self._create():
                self.held = True
                return
            raw = self._read_raw()
            if raw is None:
                continue  # released between our create and read: try again
            other = _parse(raw)
            if other is not None and not self._stale(other):
                raise ValueError(self._refusal(other))
            being_written = other is None and not self._old(self.path, HALF_WRITTEN_GRACE_S)
            if not being_written and self._take_over(raw):
                continue  # the stale lock is gone: create ours at once
            if time.monotonic() > deadline:
                break
            time.sleep(0.02 * min(attempt + 1, 10))  # being written, or taken over by another
        raw = self._read_raw()
        other = None if raw is None else _parse(raw)
        if other is not None and not self._stale(other):
            raise ValueError(self._refusal(other))
        what = ("is being written by another driver" if raw is not None and other is None
                else "kept changing (another driver is taking it over)")
        raise ValueError(f"the sweep lock {self.path} {what}; retry in a few seconds")

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
        return _publish(self.path, data)

    def _makedirs(self, directory: str) -> None:
        missing = []
        while directory and not os.path.exists(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        for path in reversed(missing):
            os.makedirs(path, exist_ok=True)
            self._created.append(path)

    def _read_raw(self) -> bytes | None:
        try:
            return _storage.read_bytes(self.path)
        except OSError:
            return None

    def _read(self) -> dict | None:
        raw = self._read_raw()
        return None if raw is None else _parse(raw) or {"host": "?", "pid": None}

    def _old(self, path: str, age_s: float) -> bool:
        """Whether ``path`` was last written more than ``age_s`` ago (object stores: always)."""
        if _storage.is_uri(path):
            return True
        try:
            return time.time() - os.stat(path).st_mtime > age_s
        except OSError:
            return True

    def _take_over(self, judged: bytes) -> bool:
        """Removes the stale lock whose bytes were ``judged``, under the take-over file; False
        if another driver holds the take-over (the caller retries)."""
        if _storage.is_uri(self.path):  # no exclusive create there: best effort, see docstring
            self._remove()
            return True
        takeover = self.path + TAKEOVER_SUFFIX
        if not _publish(takeover, json.dumps(self.holder).encode()):
            raw = _read_local(takeover)
            if raw is None:
                return False  # just released: retry
            holder = _parse(raw)
            gone = holder is None or (holder.get("host") == self.holder["host"] and
                                      isinstance(holder.get("pid"), int) and
                                      not _alive(holder["pid"], holder.get("pid_start")))
            if gone or self._old(takeover, TAKEOVER_STALE_S):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(takeover)
            return False
        try:
            if _read_local(self.path) == judged:  # still the lock judged stale, not a new one
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(takeover)
        return True

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
