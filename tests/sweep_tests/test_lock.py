"""The sweep lock's two races (issue 19): a lock caught between its create and its write is not
stale, and two drivers that both judged one lock stale cannot both end up holding it.

The interleaving test makes the race deterministic: while the first driver is judging the
stale lock, a second driver takes it over completely; the first must then see the second's
fresh lock and be refused. The process test races eight real drivers on one stale lock.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snnsearch.sweep import lock as L
from snnsearch.sweep.lock import LOCK_FILE, SweepLock


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def _stale_lock(directory: Path) -> bytes:
    data = json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "pid_start": "1",
                       "since": "then"}).encode()
    (directory / LOCK_FILE).write_bytes(data)
    return data


def test_a_lock_caught_between_create_and_write_is_not_judged_stale(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_bytes(b"")  # another driver just created it, not yet written
    start = time.monotonic()
    with pytest.raises(ValueError) as info:
        SweepLock(sweep_dir=str(tmp_path)).acquire()
    assert "is being written by another driver" in str(info.value)
    assert time.monotonic() - start < 10
    assert (tmp_path / LOCK_FILE).read_bytes() == b""  # left alone
    # Only a half-written lock that stayed so for long is a dead driver's: taken over.
    old = time.time() - L.HALF_WRITTEN_GRACE_S - 5
    os.utime(tmp_path / LOCK_FILE, (old, old))
    with SweepLock(sweep_dir=str(tmp_path)):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_driver_that_judged_a_lock_stale_never_removes_the_lock_another_took_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stale_lock(tmp_path)
    second = SweepLock(sweep_dir=str(tmp_path))
    real_alive = L._alive
    calls = []

    def alive_then_race(pid: int, started: str | None) -> bool:
        calls.append(pid)
        if len(calls) == 1:  # the first driver has judged the lock stale; the second wins now
            second.acquire()
        return real_alive(pid, started)

    monkeypatch.setattr(L, "_alive", alive_then_race)
    first = SweepLock(sweep_dir=str(tmp_path))
    first.holder = {**first.holder, "pid_start": "first"}  # tell the two holders apart
    with pytest.raises(ValueError) as info:
        first.acquire()
    assert "in use by another driver" in str(info.value)
    assert second.held and not first.held
    assert json.loads((tmp_path / LOCK_FILE).read_text()) == second.holder
    assert not (tmp_path / (LOCK_FILE + L.TAKEOVER_SUFFIX)).exists()
    second.release()


def test_a_takeover_file_of_a_killed_driver_does_not_block(tmp_path: Path) -> None:
    _stale_lock(tmp_path)
    (tmp_path / (LOCK_FILE + L.TAKEOVER_SUFFIX)).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": _dead_pid(), "pid_start": "1"}))
    with SweepLock(sweep_dir=str(tmp_path)):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


RACER = """
import json, os, sys, time
from pathlib import Path
from snnsearch.sweep.lock import SweepLock
sweep, go, out = sys.argv[1:4]
while not os.path.exists(go):
    time.sleep(0.001)
lock = SweepLock(sweep_dir=sweep)
try:
    lock.acquire()
except ValueError as err:
    Path(out).write_text("refused " + str(err))
    sys.exit(0)
Path(out).write_text("won")
time.sleep(2.5)
lock.release()
"""


def test_racing_drivers_on_one_stale_lock_exactly_one_wins(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    _stale_lock(sweep)
    go = tmp_path / "go"
    outs = [tmp_path / f"out{i}" for i in range(8)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(sweep), str(go), str(out)],
                              env=env) for out in outs]
    time.sleep(2.0)  # let every racer import and spin on the start file
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    results = [out.read_text() for out in outs]
    assert sum(r == "won" for r in results) == 1, results
    assert all(r == "won" or "in use by another driver" in r for r in results), results
    assert sorted(p.name for p in sweep.iterdir()) == []  # lock released, no temp files left
