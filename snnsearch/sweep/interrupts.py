"""Ctrl-C (SIGINT) and SIGTERM (``ray job stop``, a scheduler's kill) stop a sweep cleanly.

Ray Tune catches only SIGINT, ends ``fit()`` normally and returns the results, so the driver
used to exit 0, call the interrupted trials "stopped early", leave their MLflow children RUNNING
and mark the parent FINISHED; SIGTERM killed the driver without saving anything. Here both
signals are recorded and forwarded to Tune as SIGUSR1 (which Tune always handles: save the
experiment state, stop the trials, return); the sweep then ends as *interrupted*: the unfinished
trials are ``interrupted`` in the table, their children and the parent are KILLED, the console
prints the exact ``--resume`` command and the CLI exits with 128 + the signal number (130, 143).
A second signal aborts at once.

A full storage stops a sweep the same way (:class:`DiskGuard`, snnsearch/storage/diskfull.py):
the driver stops it itself while there is still room to save its state, the console's one
``error:`` line names the storage and the bytes needed, and ``--resume`` continues once space
was freed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ray.tune import Callback

log = logging.getLogger(__name__)
INTERRUPTED = "interrupted"


@dataclasses.dataclass
class _State:
    signum: int | None = None
    forwarded: bool = False
    loop_seen: bool = False  # a StopForwarder ran: it forwards (and records the cut trials)
    cut: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None  # the driver stopped the sweep itself (a full storage): why


_STATE = _State()


class SweepInterrupted(Exception):
    """The sweep stopped on a signal; its results up to then are saved.

    Args:
        signum: the signal received.
        outcome: the sweep's outcome (table and summary of the trials so far).
        resume: the command that continues the sweep.
    """

    def __init__(self, signum: int, outcome: Any, resume: str, error: str | None = None) -> None:
        super().__init__(error or f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.outcome = outcome
        self.resume = resume
        self.error = error

    @property
    def exit_code(self) -> int:
        return 1 if self.error else 128 + self.signum


class StorageFull(Exception):
    """The storage filled up before the sweep could stop itself; the message is one line."""


def _forward() -> None:
    """Asks Tune to stop (once): its SIGUSR1 handler saves the state and ends ``fit()``."""
    handler = signal.getsignal(signal.SIGUSR1)
    if _STATE.forwarded or not callable(handler) or handler is _on_usr1:
        return
    _STATE.forwarded = True
    os.kill(os.getpid(), signal.SIGUSR1)


def _on_signal(signum: int, frame: Any) -> None:
    if _STATE.signum is not None:
        raise KeyboardInterrupt  # a second signal: give up the clean stop
    _STATE.signum = signum
    print(f"\n{signal.Signals(signum).name} received: saving the sweep state and stopping the "
          "trials (send it again to abort at once)", file=sys.stderr, flush=True)
    if not _STATE.loop_seen:  # a sweep restored from before StopForwarder existed
        _forward()


def _on_usr1(signum: int, frame: Any) -> None:
    """Placeholder until Tune installs its own SIGUSR1 handler (default action: terminate)."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[_State]:
    """Within the block SIGINT/SIGTERM stop the sweep cleanly (main thread only: elsewhere
    signals cannot be caught, and the block changes nothing)."""
    _STATE.signum, _STATE.forwarded, _STATE.loop_seen, _STATE.cut = None, False, False, []
    _STATE.error = None
    if threading.current_thread() is not threading.main_thread():
        yield _STATE
        return
    names = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    old = {s: signal.getsignal(s) for s in names}
    old_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours forwards it instead (SIGTERM too)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGUSR1, _on_usr1)
    try:
        yield _STATE
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if old_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = old_env


class StopForwarder(Callback):
    """Forwards a recorded signal to Tune at the start of the next loop step, noting which trials
    it cuts (Tune marks every trial TERMINATED while it cleans up, so afterwards they cannot be
    told apart from finished ones). Also covers a signal that arrived before Tune's SIGUSR1
    handler existed (during Tuner set-up or restore)."""

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        _STATE.loop_seen = True
        if _STATE.signum is not None and not _STATE.forwarded:
            _STATE.cut = [t.trial_id for t in trials if t.status not in ("TERMINATED", "ERROR")]
            _forward()


class DiskGuard(Callback):
    """Stops the sweep (as Ctrl-C does: state saved, trials resumable) when its storage has
    less room than the sweep needs (``diskfull.needed_bytes``), or when a trial failed with
    ENOSPC; checked at most every ``every_s`` seconds of the driver loop.

    Args:
        sweep_dir: the sweep directory (its file system is measured).
        every_s: seconds between two free-space checks.
    """

    def __init__(self, *, sweep_dir: str, every_s: float = 2.0) -> None:
        self.sweep_dir = sweep_dir
        self.every_s = every_s
        self._last = 0.0
        self._largest: int | None = None  # the largest checkpoint reported so far, bytes
        self._state: tuple[float, int] | None = None  # (when measured, experiment state bytes)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_largest": None, "_state": None, "_last": 0.0}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A guard pickled by an older driver (tuner.pkl) had none of the size fields.
        self.__dict__.update({**state, "_largest": None, "_state": None, "_last": 0.0})
        self.__dict__.pop("_needed", None)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any,
                      **info: Any) -> None:
        """Sizes each new checkpoint as it is reported (one folder), so the guard never walks
        every trial's folder again: that walk grew with the sweep and, every time the number of
        running trials changed, cost the driver loop up to a second at 1,000 trials."""
        from snnsearch.storage import diskfull

        if self._largest is None:  # first sight (a new or restored driver): one walk
            self._largest = diskfull.largest_checkpoint(self.sweep_dir)
        path = str(getattr(checkpoint, "path", "") or "")
        if path:
            self._largest = max(self._largest, diskfull.checkpoint_bytes(path))

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        from snnsearch.storage import diskfull

        if _STATE.signum is not None or time.monotonic() - self._last < self.every_s:
            return
        self._last = time.monotonic()
        running = sum(t.status == "RUNNING" for t in trials)
        free = diskfull.free_bytes(self.sweep_dir)
        if free is None:
            return
        if self._largest is None:
            self._largest = diskfull.largest_checkpoint(self.sweep_dir)
        # The experiment state is re-measured every 30 s (it grows with the trials, and
        # listing the sweep folder does too); the free space every check.
        when, state = self._state or (-1e9, 0)
        if time.monotonic() - when > 30:
            state = diskfull.state_bytes(self.sweep_dir)
            self._state = (time.monotonic(), state)
        needed = diskfull.needed_bytes(self.sweep_dir, running, largest=self._largest,
                                       state=state)
        if free < needed:
            self._stop(trials, diskfull.disk_full_message(self.sweep_dir, free=free,
                                                          needed=needed - free))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from snnsearch.storage import diskfull

        try:
            with open(trial.error_file, errors="replace") as fh:
                text = fh.read()[-4000:]
        except (OSError, TypeError, AttributeError):
            return
        if _STATE.signum is None and diskfull.is_disk_full(text):
            free = diskfull.free_bytes(self.sweep_dir)
            needed = diskfull.needed_bytes(self.sweep_dir, len(trials))
            self._stop(trials, diskfull.disk_full_message(
                self.sweep_dir, free=free, needed=max(needed - (free or 0), 1)))

    def _stop(self, trials: list, error: str) -> None:
        log.warning("%s", error)
        _STATE.signum, _STATE.error = signal.SIGTERM, error
        _STATE.cut = [t.trial_id for t in trials if t.status not in ("TERMINATED", "ERROR")]
        _forward()


@contextlib.contextmanager
def stop_when_full(sweep_dir: str) -> Iterator[None]:
    """Turns any failure of the block while the storage is full (ENOSPC, or a crash reading a
    file the full disk truncated) into :class:`StorageFull` with one line naming the storage and
    the bytes needed."""
    from snnsearch.storage import diskfull

    try:
        yield
    except (SweepInterrupted, ValueError, KeyboardInterrupt):
        raise
    except Exception as err:
        if _STATE.error:  # the guard saw the disk full first; this is what it broke
            raise StorageFull(_STATE.error) from err
        free = diskfull.free_bytes(sweep_dir)
        needed = diskfull.needed_bytes(sweep_dir, 1)
        if diskfull.is_disk_full(err) or (free is not None and free < needed):
            raise StorageFull(diskfull.disk_full_message(
                sweep_dir, free=free, needed=max(needed - (free or 0), 1))) from err
        raise


def unfinished(results: Any) -> list[str]:
    """Trial ids that were pending, running or paused when the signal stopped the sweep."""
    return list(_STATE.cut)


def close_children(tracking_uri: str, parent_run_id: str, trial_ids: Iterable[str]) -> None:
    """Marks the MLflow child runs of interrupted trials KILLED (``snnsearch.status``
    ``interrupted``); a resumed sweep reopens them, so no duplicate is ever created."""
    from snnsearch.tracking import mlflow_logging as M

    wanted = set(trial_ids)
    if not wanted:
        return
    client = M.make_client(tracking_uri)
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{M.PARENT_TAG}` = '{parent_run_id}'", max_results=10000)
    for run in runs:
        if run.data.tags.get(M.TRIAL_TAG) in wanted:
            client.set_tag(run.info.run_id, M.STATUS_TAG, INTERRUPTED)
            client.set_terminated(run.info.run_id, status="KILLED")


def resume_command(storage: str, name: str, task: str = "<task>") -> str:
    """The exact command that continues this sweep (same script, storage and name),
    shell-quoted; ``task`` names the script when the sweep was not started from one."""
    script = sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else f"sweeps/{task}.py"
    return shlex.join(["python", script, "--storage", storage,
                       "--name", name, "--resume"])
