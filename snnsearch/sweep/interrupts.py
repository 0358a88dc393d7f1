"""Ctrl-C (SIGINT) and SIGTERM (``ray job stop``, a scheduler's kill) stop a sweep cleanly.

Ray Tune catches only SIGINT, ends ``fit()`` normally and returns the results, so the driver
used to exit 0, call the interrupted trials "stopped early", leave their MLflow children RUNNING
and mark the parent FINISHED; SIGTERM killed the driver without saving anything. Here both
signals are recorded and forwarded to Tune as SIGUSR1 (which Tune always handles: save the
experiment state, stop the trials, return); the sweep then ends as *interrupted*: the unfinished
trials are ``interrupted`` in the table, their children and the parent are KILLED, the console
prints the exact ``--resume`` command and the CLI exits with 128 + the signal number (130, 143).
A second signal aborts at once.
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


_STATE = _State()


class SweepInterrupted(Exception):
    """The sweep stopped on a signal; its results up to then are saved.

    Args:
        signum: the signal received.
        outcome: the sweep's outcome (table and summary of the trials so far).
        resume: the command that continues the sweep.
    """

    def __init__(self, signum: int, outcome: Any, resume: str) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.outcome = outcome
        self.resume = resume

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


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
