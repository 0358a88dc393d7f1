"""Storage safety without Ray: ``--name`` is one path component, one driver per sweep directory
(lock with holder, stale-lock takeover), and atomic writes of the sweep's own files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from snnsearch.storage import sweepdir as _storage
from snnsearch.sweep.lock import LOCK_FILE, SweepLock


@pytest.mark.parametrize("name", ["..", ".", "../../etc/x", "/abs/path", "a/b", "", "x y",
                                  "sweep\n", "a" * 201, "naïve"])
def test_unsafe_sweep_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError) as info:
        _storage.check_name(name)
    assert "--name" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["mnist-20261201-101010", "a.b_c-9", "..x", "x.."])
def test_plain_sweep_names_pass(name: str) -> None:
    assert _storage.check_name(name) == name


def test_a_second_driver_is_refused_with_the_holders_host_and_pid(tmp_path: Path) -> None:
    sweep = tmp_path / "storage" / "sweep"
    first = SweepLock(sweep_dir=str(sweep))
    first.acquire()
    # A live process of this host holds it (here: this very process, seen from a new lock).
    with pytest.raises(ValueError) as info:
        SweepLock(sweep_dir=str(sweep)).acquire()
    message = str(info.value)
    assert f"host {socket.gethostname()}, PID {os.getpid()}" in message
    assert str(sweep) in message and "--name" in message
    first.release()
    assert not (tmp_path / "storage").exists()  # nothing written: the lock's folders went too


def test_a_stale_lock_of_a_dead_driver_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    (tmp_path / LOCK_FILE).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": pid, "pid_start": "1", "since": "then"}))
    lock = SweepLock(sweep_dir=str(tmp_path))
    lock.acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists() and tmp_path.exists()


def test_a_reused_pid_does_not_keep_a_lock_alive(tmp_path: Path) -> None:
    """The holder's PID now belongs to another process (start time differs): stale."""
    (tmp_path / LOCK_FILE).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": "-1", "since": "x"}))
    with SweepLock(sweep_dir=str(tmp_path)):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid_start"] != "-1"


def test_a_lock_from_another_host_is_refused_with_how_to_clear_it(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text(json.dumps(
        {"host": "node-7", "pid": 4242, "pid_start": "1", "since": "2026-12-01T10:00:00"}))
    with pytest.raises(ValueError) as info:
        SweepLock(sweep_dir=str(tmp_path)).acquire()
    message = str(info.value)
    assert "host node-7, PID 4242" in message and f"delete {tmp_path / LOCK_FILE}" in message
    assert (tmp_path / LOCK_FILE).exists()  # another host's lock is never removed silently


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "sweep.json"
    _storage.write_text(str(target), '{"v": 1}')

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        _storage.write_text(str(target), '{"v": 2, "half": ')
    assert target.read_text() == '{"v": 1}'  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.json"]  # no temp file left


def test_the_trial_table_is_written_atomically(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from snnsearch.reporting.results import write_table

    path = write_table([{"trial_id": "a", "status": "completed"}], str(tmp_path))
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        write_table([{"trial_id": "b", "status": "errored"}], str(tmp_path))
    assert list(pd.read_parquet(path)["trial_id"]) == ["a"]
