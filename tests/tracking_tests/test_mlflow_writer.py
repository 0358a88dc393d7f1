"""The background MLflow writer fed by hand (no MLflow, no Ray): ops are written in order through
failures (retried with backoff), memory stays bounded (the excess spills to a file and comes back
in order), a flush waits a bounded time and counts what is unwritten, and what a closed writer
could not write is the first thing a later writer sends."""

from __future__ import annotations

import threading
from pathlib import Path

from snnsearch.tracking.mlflow_writer import BackgroundWriter, WriterPool, shard_of


class FlakyServer:
    """An ``apply`` that fails its first ``failures`` calls, then writes one op per call (a
    partial write: the writer must retry the rest), optionally held on ``gate``."""

    def __init__(self, failures: int = 0, gate: threading.Event | None = None,
                 drop_every: int = 3) -> None:
        self.failures = failures
        self.drop_every = drop_every
        self.gate = gate
        self.written: list[int] = []
        self.calls = 0

    def apply(self, ops: list[dict]) -> None:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(30)
        if self.calls <= self.failures:
            raise ConnectionError("server down")
        self.written.append(ops[0]["i"])
        del ops[0]
        if ops and self.drop_every and self.calls % self.drop_every == 0:
            raise ConnectionError("dropped mid-batch")


def _op(i: int) -> dict:
    return {"op": "result", "trial": "t", "i": i, "metrics": {"a": 1.0, "b": 2.0}}


def test_failed_writes_are_retried_in_order_and_flush_waits_for_them() -> None:
    server = FlakyServer(failures=3)
    writer = BackgroundWriter(apply=server.apply, max_backoff_s=0.05)
    for i in range(20):
        writer.put(_op(i))
    report = writer.flush(30)
    assert server.written == list(range(20))  # nothing lost, nothing reordered
    assert report.unwritten_ops == 0 and report.written_ops == 20
    assert report.written_metrics == 40 and report.retries >= 3
    assert "ConnectionError" in (report.last_error or "")
    writer.close()


def test_memory_is_bounded_and_the_excess_spills_and_returns_in_order(tmp_path: Path) -> None:
    gate = threading.Event()
    server = FlakyServer(gate=gate)
    spill = tmp_path / "pending.jsonl"
    writer = BackgroundWriter(apply=server.apply, max_buffer=5, max_batch=4, spill_path=spill,
                              max_backoff_s=0.05)
    for i in range(50):
        writer.put(_op(i))
    assert len(writer._memory) <= 5 and spill.stat().st_size > 0
    assert writer.report().unwritten_metrics == 100
    gate.set()
    report = writer.flush(30)
    assert server.written == list(range(50))
    assert report.spilled_ops >= 40 and report.unwritten_ops == 0
    writer.close()


def test_a_server_down_at_the_end_is_counted_and_its_backlog_kept_for_a_resume(
    tmp_path: Path,
) -> None:
    spill = tmp_path / "pending.jsonl"
    down = FlakyServer(failures=10**6)
    writer = BackgroundWriter(apply=down.apply, spill_path=spill, max_backoff_s=0.05)
    for i in range(7):
        writer.put(_op(i))
    report = writer.flush(0.5)  # bounded: returns although nothing could be written
    assert report.unwritten_ops == 7 and report.unwritten_metrics == 14
    assert writer.close().unwritten_ops == 7
    back = FlakyServer()
    later = BackgroundWriter(apply=back.apply, spill_path=spill)
    later.put(_op(7))
    assert later.flush(30).unwritten_ops == 0
    assert back.written == list(range(8))  # the old backlog first, then the new op
    later.close()


def test_a_pool_keeps_each_trial_on_one_writer_and_broadcasts_the_rest() -> None:
    servers = [FlakyServer(drop_every=0) for _ in range(3)]
    pool = WriterPool(appliers=[s.apply for s in servers], spill_paths=[None] * 3)
    trials = [f"trial_{k}" for k in range(12)]
    for i in range(60):
        pool.put({"op": "result", "trial": trials[i % 12], "i": i})
    pool.put({"op": "drop_lost", "i": -1})
    assert pool.flush(30).unwritten_ops == 0
    for k, server in enumerate(servers):
        mine = [i for i in range(60) if shard_of(trials[i % 12], 3) == k]
        assert server.written == [*mine, -1]
    assert shard_of("abc", 7) == shard_of("abc", 7)  # stable (crc32), not hash()
    pool.close()


class SlowServer:
    """An ``apply`` that writes one op per call, ``delay_s`` each: a server slower than the
    flush's timeout but still taking writes."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.written: list[int] = []

    def apply(self, ops: list[dict]) -> None:
        import time

        time.sleep(self.delay_s)
        self.written.append(ops[0]["i"])
        del ops[0]


def test_a_flush_waits_while_the_server_takes_writes_and_gives_up_when_it_stops() -> None:
    slow = SlowServer(delay_s=0.1)
    pool = WriterPool(appliers=[slow.apply], spill_paths=[None])
    for i in range(15):  # 1.5 s of writes, against a 0.5 s timeout without progress
        pool.put({"op": "result", "trial": "t", "i": i})
    assert pool.flush(0.5).unwritten_ops == 0 and slow.written == list(range(15))
    pool.close()
    dead = [FlakyServer(failures=10**6) for _ in range(4)]
    pool = WriterPool(appliers=[s.apply for s in dead], spill_paths=[None] * 4)
    for i in range(8):
        pool.put({"op": "result", "trial": f"t{i}", "i": i})
    import time

    start = time.monotonic()
    report = pool.flush(0.5)  # one timeout for the pool, not one per writer
    assert report.unwritten_ops == 8 and time.monotonic() - start < 1.5
    pool.close()


def test_ops_arriving_together_are_written_as_one_batch_and_a_flush_cuts_the_wait() -> None:
    import time

    def batches_of(linger_s: float) -> list[int]:
        sizes: list[int] = []

        def apply(ops: list[dict]) -> None:
            sizes.append(len(ops))
            del ops[:]

        writer = BackgroundWriter(apply=apply, linger_s=linger_s)
        for i in range(10):  # a trial's results 10 ms apart
            writer.put(_op(i))
            time.sleep(0.01)
        start = time.monotonic()
        assert writer.flush(5).unwritten_ops == 0
        assert time.monotonic() - start < linger_s / 2 + 0.3  # the flush did not sit it out
        writer.close()
        return sizes

    assert batches_of(1.0) == [10]
    assert len(batches_of(0.0)) >= 5  # without the linger each op is its own request
