"""A full ``--storage`` (a real tmpfs of a few MiB, filled with a ballast file): the sweep stops
with one ``error:`` line naming the storage and the bytes needed; once space is freed,
``--resume`` completes with nothing lost and one MLflow parent.

Mounting a tmpfs needs root (or passwordless sudo); elsewhere the test is skipped, and
:func:`test_disk_full_line_and_detection` checks the pieces without a mount.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from snnsearch.storage import diskfull
from snnsearch.testing.sweeps import slow_quadratic_space, stop_process_group, sweep_runs
from snnsearch.tracking import mlflow_logging as M

REPO = Path(__file__).resolve().parents[2]
SAMPLES, EPOCHS = 4, 3


def _mount_command() -> list[str] | None:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True,
                                               check=False).returncode == 0:
        return ["sudo", "-n"]
    return None


@pytest.fixture
def tiny_storage(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted at ``tmp_path/mnt`` (unmounted afterwards)."""
    prefix = _mount_command()
    if prefix is None:
        pytest.skip("mounting a tmpfs needs root or passwordless sudo")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run([*prefix, "mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run([*prefix, "umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path, leave: int) -> Path:
    """Writes a ballast file so that about ``leave`` bytes stay free on ``mnt``."""
    ballast = mnt / "ballast"
    size = max(shutil.disk_usage(mnt).free - leave, 0)
    with open(ballast, "wb") as out:
        out.truncate(0)
        chunk = b"\0" * 65536
        while size > 0:
            out.write(chunk[:size])
            size -= len(chunk)
    return ballast


def test_disk_full_line_and_detection(tmp_path: Path) -> None:
    err = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    wrapped = RuntimeError("upload failed")
    wrapped.__cause__ = err
    assert diskfull.is_disk_full(err) and diskfull.is_disk_full(wrapped)
    assert diskfull.is_disk_full("OSError: [Errno 28] No space left on device: '/x'")
    assert not diskfull.is_disk_full(ValueError("bad")) and not diskfull.is_disk_full(None)
    line = diskfull.disk_full_message(str(tmp_path), free=10, needed=2048)
    assert "\n" not in line and str(tmp_path) in line and "2048 bytes" in line
    assert diskfull.free_bytes(str(tmp_path / "not" / "yet")) == shutil.disk_usage(tmp_path).free
    assert diskfull.free_bytes("s3://bucket/sweeps") is None
    trial = tmp_path / "trial_1"
    (trial / "checkpoint_000000").mkdir(parents=True)
    (trial / "checkpoint_000000" / "state.bin").write_bytes(b"x" * 5000)
    assert diskfull.largest_checkpoint(str(tmp_path)) == 5000
    assert diskfull.needed_bytes(str(tmp_path), 2) >= 2 * diskfull.CHECKPOINT_MARGIN * 5000
    assert not diskfull.errored_by_disk_full(str(tmp_path))
    (trial / "error.txt").write_text("Traceback ...\nOSError: [Errno 28] No space left on device")
    assert diskfull.errored_by_disk_full(str(tmp_path))


def test_the_guard_sizes_each_checkpoint_once_and_never_rewalks_the_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard's check does not grow with the sweep: one walk when it first looks (a new or
    restored driver), then each reported checkpoint is sized alone; it still stops the sweep
    once the free space falls below what the largest checkpoint needs."""
    import pickle
    from types import SimpleNamespace

    from snnsearch.sweep import interrupts

    walks: list[str] = []
    real_walk = diskfull.largest_checkpoint
    monkeypatch.setattr(diskfull, "largest_checkpoint",
                        lambda d: walks.append(d) or real_walk(d))
    free = {"bytes": 10**12}
    monkeypatch.setattr(diskfull, "free_bytes", lambda d: free["bytes"])
    stops: list[str] = []
    guard = interrupts.DiskGuard(sweep_dir=str(tmp_path), every_s=0.0)
    monkeypatch.setattr(guard, "_stop", lambda trials, line: stops.append(line))
    trials = [SimpleNamespace(status="RUNNING", trial_id=f"t{k}") for k in range(4)]
    for k in range(30):  # trials finish and start: the running count changes every step
        folder = tmp_path / f"trial_{k}" / "checkpoint_000000"
        folder.mkdir(parents=True)
        (folder / "state.bin").write_bytes(b"x" * (1000 + 100 * k))
        guard.on_checkpoint(0, trials, trials[0], SimpleNamespace(path=str(folder)))
        trials[k % 4].status = "TERMINATED" if trials[k % 4].status == "RUNNING" else "RUNNING"
        guard.on_step_begin(k, trials)
    assert len(walks) == 1 and guard._largest == 1000 + 100 * 29 and not stops
    free["bytes"] = 0
    guard.on_step_begin(30, trials)
    assert len(stops) == 1 and str(tmp_path) in stops[0]
    stored = interrupts.DiskGuard(sweep_dir=str(tmp_path))
    stored._largest = 12345
    restored = pickle.loads(pickle.dumps(stored))  # tuner.pkl: sizes are measured afresh
    assert restored._largest is None and restored.sweep_dir == stored.sweep_dir


@pytest.mark.ray
@pytest.mark.slow
def test_a_full_storage_stops_with_one_line_and_resumes_with_nothing_lost(
    ray_local: None, tmp_path: Path, mlflow_uri: str, tiny_storage: Path
) -> None:
    import ray

    storage, name = tiny_storage / "storage", "full"
    sweep_dir = storage / name
    space = slow_quadratic_space(tmp_path, 0.5)
    args = ["--space", str(space), "--storage", str(storage), "--name", name,
            "--samples", str(SAMPLES), "--max-epochs", str(EPOCHS), "--scheduler", "fifo",
            "--concurrency", "2", "--mlflow-uri", mlflow_uri]
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
           diskfull.MIN_FREE_ENV: str(256 * 1024)}
    ballast = _fill(tiny_storage, leave=320 * 1024)
    cli = [sys.executable, str(REPO / "sweeps" / "mnist.py")]
    proc = subprocess.Popen([*cli, *args], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=400)
    finally:
        stop_process_group(proc, timeout=5)
    errors = err.strip().splitlines()
    assert proc.returncode == 1, (out[-3000:], err[-3000:])
    assert "Traceback" not in out + err, err[-3000:]
    lines = [e for e in errors if e.startswith("error:")]
    assert len(lines) == 1, errors
    assert f"storage {sweep_dir} is full" in lines[0] and "bytes more" in lines[0], lines
    table = pd.read_parquet(sweep_dir / "trials.parquet")
    assert len(table) < SAMPLES or (table["status"] != "completed").any(), table

    ballast.unlink()  # space freed
    done = subprocess.run([*cli, "--storage", str(storage), "--name", name, "--resume"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=400,
                          check=False)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    table = pd.read_parquet(sweep_dir / "trials.parquet")
    assert len(table) == SAMPLES and table["trial_id"].is_unique, table
    assert (table["status"] == "completed").all(), table
    parent_id = (sweep_dir / M.PARENT_ID_FILE).read_text().strip()
    parents, children = sweep_runs(mlflow_uri, parent_run_id=parent_id)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    ids = [c.data.tags[M.TRIAL_TAG] for c in children]
    assert len(ids) == len(set(ids)) == SAMPLES
    with contextlib.suppress(FileNotFoundError):
        assert not (sweep_dir / ".snnsearch.lock").exists()
