"""A background writer for MLflow: the driver queues, one thread writes, nothing is dropped.

Every result of every trial passes through the one Tune driver; a synchronous MLflow request
there makes every trial's bookkeeping wait for an HTTP round trip, and a slow or restarting server
stalls them all. So the driver only appends an *op* (a small JSON-able dict) to a queue, O(1), and
this thread writes the ops in order.

Why our own thread and not MLflow 3.17's ``log_batch(..., synchronous=False)``: its queue
(``mlflow.utils.async_logging``) is unbounded, and a batch whose request fails is logged and
dropped, never retried; it also covers only metrics/params/tags, while a child run must first be
created (a synchronous ``create_run``). Logging from the trial workers (Ray's ``setup_mlflow``)
would put an MLflow round trip in every training step and needs every node to reach the server;
a server outage would then cost either the metrics or the trials' time. Here:

- **Retried, in order.** A failing write is retried with exponential backoff (0.5 s doubling to
  ``max_backoff_s``) until it succeeds; later ops wait behind it, so a run is never logged to
  before it exists. Re-sending a write that reached the server is harmless: MLflow ignores a
  metric already stored with the same key, step, timestamp and value, tags and statuses are
  overwritten with the same values, and the child-run applier looks a run up by its trial tag
  before creating it again.
- **Few requests.** A batch waits up to ``linger_s`` (0.5 s) for more ops before it is written,
  as MLflow's own asynchronous logging does, so a trial's results that arrive close together
  become one ``log_batch`` (the applier groups a batch per trial) instead of one request each;
  a flush or close cuts the wait short. Metrics show up in MLflow at most that much later.
- **Bounded memory.** At most ``max_buffer`` ops wait in memory; beyond that, and until the
  backlog is written, new ops go to a JSON-lines spill file (one line per op), read back in
  order. Ops left at :meth:`close` are written to that file too, so a resumed sweep
  (``--resume``) sends them first.
- **Flushed while the server takes writes.** :meth:`flush` waits until the queue is empty, and
  gives up only once ``timeout_s`` has passed without a single op written (a slow server that is
  draining a backlog is waited for; a dead one for ``timeout_s``). It returns a
  :class:`WriterReport` counting what is still unwritten (the sweep summary prints it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Op = dict[str, Any]  # JSON-able; "op" names the kind, "metrics" (if any) maps key -> float


@dataclasses.dataclass(frozen=True)
class WriterReport:
    """What a writer has done and what it could not do (yet).

    Args:
        written_ops: ops written to MLflow.
        written_metrics: metric values among them.
        unwritten_ops: ops still queued (memory or spill file) when the report was taken.
        unwritten_metrics: metric values among the unwritten ops.
        retries: failed attempts that were retried.
        spilled_ops: ops that went through the spill file because memory was full.
        last_error: the latest failure (``Type: message``), None if none.
    """

    written_ops: int = 0
    written_metrics: int = 0
    unwritten_ops: int = 0
    unwritten_metrics: int = 0
    retries: int = 0
    spilled_ops: int = 0
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __add__(self, other: WriterReport) -> WriterReport:
        values = {f.name: getattr(self, f.name) + getattr(other, f.name)
                  for f in dataclasses.fields(self) if f.name != "last_error"}
        return WriterReport(**values, last_error=other.last_error or self.last_error)


def count_metrics(ops: Any) -> int:
    """Metric values carried by ``ops`` (an iterable of ops)."""
    return sum(len(op.get("metrics") or ()) for op in ops)


class BackgroundWriter:
    """One daemon thread applying queued ops through ``apply``.

    Args:
        apply: writes a prefix of the list it is given and removes (``del ops[:n]``) each op it
            has written; raising leaves the rest for a retry of the same list after a backoff.
            Called only from the writer thread.
        max_buffer: ops held in memory before new ones go to ``spill_path``.
        spill_path: the JSON-lines spill file (None: memory is not bounded; a warning says so
            once it would have spilled).
        max_batch: most ops handed to one ``apply`` call (a batch of results becomes one
            ``log_batch`` per run).
        max_backoff_s: longest wait between retries.
        linger_s: how long a batch waits for more ops before it is written.
    """

    def __init__(
        self, *, apply: Callable[[list[Op]], None], max_buffer: int = 20_000,
        spill_path: Path | None = None, max_batch: int = 512, max_backoff_s: float = 8.0,
        linger_s: float = 0.5,
    ) -> None:
        self._apply = apply
        self._linger_s = linger_s
        self._max_buffer = max_buffer
        self._spill_path = spill_path
        self._max_batch = max_batch
        self._max_backoff_s = max_backoff_s
        self._cond = threading.Condition()
        self._memory: deque[Op] = deque()
        self._pending: list[Op] = []  # the batch being written (retried as a whole)
        self._spill_ops = 0  # unread ops in the spill file
        self._spill_metrics = 0
        self._spill_offset = 0
        self._spill_file: Any = None
        self._wake = threading.Event()  # cuts a backoff short (flush, close)
        self._closing = False
        self._warned_unbounded = False
        self._stats = {"written_ops": 0, "written_metrics": 0, "retries": 0, "spilled_ops": 0}
        self._last_error: str | None = None
        self._recover_spill()
        self._thread = threading.Thread(target=self._run, name="mlflow-writer", daemon=True)
        self._thread.start()

    # ---- the driver's side: O(1) ------------------------------------------------------
    def put(self, op: Op) -> None:
        """Queues one op (never blocks on MLflow)."""
        with self._cond:
            if self._spill_ops or len(self._memory) >= self._max_buffer:
                if self._spill_path is not None:
                    self._spill([op])
                    self._cond.notify()
                    return
                if not self._warned_unbounded:
                    self._warned_unbounded = True
                    log.warning("MLflow backlog above %d ops and no spill file: it stays in "
                                "memory", self._max_buffer)
            self._memory.append(op)
            self._cond.notify()

    def flush(self, timeout_s: float) -> WriterReport:
        """Waits until every queued op is written, or until ``timeout_s`` passes without any op
        written; a backoff in progress is cut short (the server may be back)."""
        return _wait_drained([self], timeout_s)

    def nudge(self) -> None:
        """Cuts a retry backoff or a batch's linger short (a flush is waiting: the server may
        be back, and nothing more will come)."""
        self._wake.set()
        with self._cond:
            self._cond.notify_all()

    def backlog(self) -> tuple[int, int]:
        """(ops still unwritten, ops written so far)."""
        with self._cond:
            return self._backlog(), self._stats["written_ops"]

    def report(self) -> WriterReport:
        with self._cond:
            return self._report()

    def close(self, timeout_s: float = 5.0) -> WriterReport:
        """Stops the thread (after at most ``timeout_s`` more for a write in flight) and moves
        whatever is unwritten to the spill file, first in line for a later writer."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._wake.set()
        self._thread.join(timeout_s)
        with self._cond:
            if self._spill_path is not None and (self._pending or self._memory):
                self._persist_leftovers()
            if self._spill_file is not None:
                self._spill_file.close()
                self._spill_file = None
            return self._report()

    # ---- the writer thread -------------------------------------------------------------
    def _run(self) -> None:
        first_delay = min(0.5, self._max_backoff_s)
        delay = first_delay
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._take()
                    if self._pending:
                        break
                    self._cond.wait()
                if self._closing:
                    return
                self._linger()
                if self._closing:
                    return
                batch = self._pending
            before = len(batch), count_metrics(batch)
            try:
                self._apply(batch)
            except Exception as err:  # noqa: BLE001 - any failure is retried, never raised
                with self._cond:
                    self._count_written(before[0] - len(batch),
                                        before[1] - count_metrics(batch))
                    self._stats["retries"] += 1
                    first = self._last_error is None or self._stats["retries"] % 50 == 1
                    self._last_error = f"{type(err).__name__}: {str(err)[:300]}"
                if first:
                    log.warning("MLflow write failed (%s); %d ops queued, retrying every %.0f s "
                                "at most (trials carry on; results stay in trials.parquet)",
                                self._last_error, len(batch) + len(self._memory),
                                self._max_backoff_s)
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(delay * 2, self._max_backoff_s)
                continue
            delay = first_delay
            with self._cond:  # an apply may stop early without failing: the rest goes again
                self._count_written(before[0] - len(batch), before[1] - count_metrics(batch))
                self._cond.notify_all()

    def _linger(self) -> None:
        """Lets the batch fill for up to ``linger_s`` (called holding the lock; ``put`` and
        ``nudge`` wake it)."""
        deadline = time.monotonic() + self._linger_s
        while (len(self._pending) < self._max_batch and not self._closing
               and not self._wake.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._cond.wait(left)
            self._take()

    def _count_written(self, ops: int, metrics: int) -> None:
        self._stats["written_ops"] += ops
        self._stats["written_metrics"] += metrics

    def _take(self) -> None:
        """Moves the next batch into ``_pending``: memory first, then the spill file (ops
        spill only while memory is full, so this keeps their order)."""
        while self._memory and len(self._pending) < self._max_batch:
            self._pending.append(self._memory.popleft())
        if not self._pending and self._spill_ops:
            self._pending = self._read_spill(self._max_batch)

    def _backlog(self) -> int:
        return len(self._pending) + len(self._memory) + self._spill_ops

    def _report(self) -> WriterReport:
        return WriterReport(
            **self._stats, unwritten_ops=self._backlog(),
            unwritten_metrics=(count_metrics(self._pending) + count_metrics(self._memory)
                               + self._spill_metrics),
            last_error=self._last_error)

    # ---- the spill file ------------------------------------------------------------------
    def _spill(self, ops: list[Op]) -> None:
        assert self._spill_path is not None
        if self._spill_file is None:
            self._spill_path.parent.mkdir(parents=True, exist_ok=True)
            self._spill_file = open(self._spill_path, "a", encoding="utf-8")  # noqa: SIM115
        for op in ops:
            self._spill_file.write(json.dumps(op) + "\n")
            self._spill_ops += 1
            self._spill_metrics += len(op.get("metrics") or ())
        self._spill_file.flush()
        self._stats["spilled_ops"] += len(ops)

    def _read_spill(self, limit: int) -> list[Op]:
        assert self._spill_path is not None
        ops: list[Op] = []
        with open(self._spill_path, encoding="utf-8") as handle:
            handle.seek(self._spill_offset)
            while len(ops) < limit:
                line = handle.readline()
                if not line:
                    break
                self._spill_offset = handle.tell()
                try:
                    op = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash mid-write
                    log.warning("skipping an unreadable line of %s", self._spill_path)
                    continue
                if isinstance(op, dict):
                    ops.append(op)
            at_end = not handle.readline()
        self._spill_ops = max(0, self._spill_ops - len(ops))
        self._spill_metrics = max(0, self._spill_metrics - count_metrics(ops))
        if at_end:  # all read: start the file afresh
            self._spill_ops = self._spill_metrics = 0
            self._spill_offset = 0
            if self._spill_file is not None:
                self._spill_file.close()
                self._spill_file = None
            os.truncate(self._spill_path, 0)
        return ops

    def _persist_leftovers(self) -> None:
        """Rewrites the spill file as pending + memory + its unread lines (their order)."""
        assert self._spill_path is not None
        rest = self._read_spill(10**9) if self._spill_ops else []
        ops = [*self._pending, *self._memory, *rest]
        self._pending, self._memory = [], deque()
        if self._spill_file is not None:
            self._spill_file.close()
            self._spill_file = None
        if self._spill_path.exists():
            os.truncate(self._spill_path, 0)
        self._spill(ops)
        self._stats["spilled_ops"] -= len(ops)

    def _recover_spill(self) -> None:
        """Counts the ops an earlier writer left in the spill file: they are written first."""
        if self._spill_path is None or not self._spill_path.is_file():
            return
        with open(self._spill_path, encoding="utf-8") as handle:
            for line in handle:
                self._spill_ops += 1
                try:
                    self._spill_metrics += len(json.loads(line).get("metrics") or ())
                except (json.JSONDecodeError, AttributeError):
                    continue
        if self._spill_ops:
            log.warning("%d MLflow ops left by an earlier driver in %s are written first",
                        self._spill_ops, self._spill_path)


def shard_of(trial_id: str, shards: int) -> int:
    """The writer of a trial: stable across processes (a resumed driver routes a trial's new
    ops to the writer whose spill file holds its old ones), unlike ``hash``."""
    return zlib.crc32(trial_id.encode()) % shards


class WriterPool:
    """Several :class:`BackgroundWriter` threads, each owning the trials :func:`shard_of`
    gives it, so one trial's ops stay in order while different trials' requests overlap (with
    a server 50 ms away one thread manages only ~20 requests/s). An op without a ``trial`` goes
    to every writer.

    Args:
        appliers: one ``apply`` per writer (each with its own MLflow client).
        spill_paths: one spill file per writer (or None each).
        max_buffer: ops in memory per writer before spilling.
    """

    def __init__(self, *, appliers: list[Callable[[list[Op]], None]],
                 spill_paths: list[Path | None], max_buffer: int = 20_000) -> None:
        self.writers = [BackgroundWriter(apply=a, spill_path=p, max_buffer=max_buffer)
                        for a, p in zip(appliers, spill_paths, strict=True)]

    def put(self, op: Op) -> None:
        """Queues ``op`` on its trial's writer (every writer when it names no trial)."""
        trial = op.get("trial")
        if trial is None:
            for writer in self.writers:
                writer.put(op)
        else:
            self.writers[shard_of(str(trial), len(self.writers))].put(op)

    def flush(self, timeout_s: float) -> WriterReport:
        """Waits until every writer is empty, or until ``timeout_s`` passes in which none of
        them wrote anything (one timeout for all: a dead server costs it once, not per
        writer)."""
        return _wait_drained(self.writers, timeout_s)

    def report(self) -> WriterReport:
        return sum((w.report() for w in self.writers), WriterReport())

    def close(self) -> WriterReport:
        return sum((w.close() for w in self.writers), WriterReport())


def _wait_drained(writers: list[BackgroundWriter], stall_s: float) -> WriterReport:
    """Polls ``writers`` until none has a backlog or ``stall_s`` passed without progress."""
    last_written, last_progress = -1, time.monotonic()
    while True:
        states = [w.backlog() for w in writers]
        if not any(backlog for backlog, _ in states):
            break
        written = sum(done for _, done in states)
        now = time.monotonic()
        if written != last_written:
            last_written, last_progress = written, now
            for writer in writers:
                writer.nudge()
        elif now - last_progress >= stall_s:
            break
        time.sleep(min(0.1, max(0.0, stall_s - (now - last_progress))) or 0.01)
    for writer in writers:  # batches linger again (a flush mid-sweep is not the end)
        writer._wake.clear()
    return sum((w.report() for w in writers), WriterReport())


def write_report(sweep_dir: str, role: str, report: WriterReport) -> None:
    """``mlflow_writer.<role>.json`` in the sweep directory (read by the sweep summary)."""
    from snnsearch.storage import sweepdir as _storage

    _storage.write_text(_storage.join(sweep_dir, f"mlflow_writer.{role}.json"),
                        json.dumps(report.to_dict(), indent=2))


def read_writer_report(sweep_dir: str) -> WriterReport | None:
    """The MLflow writers' outcome of the last fit(s) of a sweep (search and repeats summed);
    None when no writer recorded one."""
    from snnsearch.storage import sweepdir as _storage

    total: dict[str, Any] | None = None
    for role in ("trial", "repeat"):
        text = _storage.read_text(_storage.join(sweep_dir, f"mlflow_writer.{role}.json"))
        if not text:
            continue
        fields = {f.name for f in dataclasses.fields(WriterReport)}
        try:  # the sweep directory is untrusted: known fields only, as the types they have
            data = {k: (None if v is None else str(v)) if k == "last_error" else int(v)
                    for k, v in json.loads(text).items() if k in fields}
        except (ValueError, TypeError, AttributeError):
            log.warning("ignoring an unreadable mlflow_writer.%s.json in %s", role, sweep_dir)
            continue
        if total is None:
            total = data
        else:
            total = {k: (total[k] + v if isinstance(v, int) else v or total.get(k))
                     for k, v in data.items()}
    return WriterReport(**total) if total is not None else None


def writer_summary_line(report: WriterReport | None) -> str | None:
    """The sweep summary's MLflow line: None when everything was written."""
    if report is None or not report.unwritten_ops:
        return None
    return (f"  MLflow: {report.unwritten_metrics} metric values ({report.unwritten_ops} "
            f"updates) could not be logged ({report.last_error}); every metric is in "
            "trials.parquet")
