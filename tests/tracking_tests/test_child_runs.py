"""The child-run applier against a real MLflow store: a backlog of interleaved trials is written
per trial in about three requests each (create, one ``log_batch``, end), every value still
arrives once, a retried trial's two lives are written in order, and a failure mid-batch leaves
exactly the unwritten trials for the retry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from snnsearch.testing.sweeps import sweep_runs
from snnsearch.tracking import mlflow_logging as M
from snnsearch.tracking.child_runs import ChildRuns


class CountingClient:
    """A real ``MlflowClient`` whose calls are counted; ``fail_at`` makes that call (1-based)
    raise once, as a dropped connection would."""

    def __init__(self, client: Any, fail_at: int | None = None) -> None:
        self._client, self.calls, self.fail_at = client, Counter(), fail_at
        self.total = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.total += 1
            if self.total == self.fail_at:
                raise ConnectionError("connection reset")
            self.calls[name] += 1
            return method(*args, **kwargs)
        return call


def _backlog(trials: int, epochs: int) -> list[dict]:
    """What a writer holds after a server outage: trials interleaved, 4 running at a time."""
    ops: list[dict] = []
    running: list[tuple[str, int]] = []
    pending = [f"t{k:03d}" for k in range(trials)]
    while pending or running:
        while pending and len(running) < 4:
            trial = pending.pop(0)
            ops.append({"op": "start", "trial": trial, "name": trial,
                        "params": {"lr": 0.01, "T": 4}})
            running.append((trial, 0))
        trial, done = running.pop(0)
        done += 1
        ops.append({"op": "result", "trial": trial, "step": done, "time": 1000 + done,
                    "metrics": {"val_acc": done / epochs, "epoch": float(done)}})
        if done == epochs:
            ops.append({"op": "close", "trial": trial, "status": "FINISHED",
                        "tags": {M.STATUS_TAG: "completed"}, "error": None})
        else:
            running.append((trial, done))
    return ops


@pytest.fixture
def applier(mlflow_uri: str, request: pytest.FixtureRequest, tmp_path: Path) -> ChildRuns:
    parent = M.SweepParentRun(tracking_uri=mlflow_uri, experiment=request.node.name)
    run_id = parent.start(name="sweep", params={}, space={})
    return ChildRuns(tracking_uri=mlflow_uri, experiment_id=parent.experiment_id,
                     parent_run_id=run_id, sweep="sweep", role="trial", key_metrics=(),
                     staging=tmp_path)


def _check_children(applier: ChildRuns, trials: int, epochs: int) -> None:
    _, children = sweep_runs(applier.tracking_uri, parent_run_id=applier.parent_run_id)
    assert len(children) == trials
    client = M.make_client(applier.tracking_uri)
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags[M.STATUS_TAG] == "completed"
        assert child.data.params == {"lr": "0.01", "T": "4"}
        history = client.get_metric_history(child.info.run_id, "val_acc")
        assert sorted(m.step for m in history) == list(range(1, epochs + 1))  # each step once


def test_a_backlog_is_written_per_trial_in_about_three_requests(applier: ChildRuns) -> None:
    ops = _backlog(trials=12, epochs=5)
    applier._client = counting = CountingClient(applier.client)
    applier.apply(ops)
    assert ops == []
    # create_run, one log_batch (params, 5 results, close tags) and set_terminated per trial,
    # plus the one search for existing children: 12 x 3 + 1. The applier before this one
    # (results merged only between two starts or closes) made 70 requests of this backlog.
    assert counting.total == 12 * 3 + 1, counting.calls
    _check_children(applier, trials=12, epochs=5)


def test_a_failure_mid_batch_leaves_only_the_unwritten_trials(applier: ChildRuns) -> None:
    ops = _backlog(trials=6, epochs=3)
    applier._client = CountingClient(applier.client, fail_at=9)  # inside the 3rd trial
    with pytest.raises(ConnectionError):
        applier.apply(ops)
    left = {op["trial"] for op in ops}
    assert left == {f"t{k:03d}" for k in range(2, 6)}  # the first two trials are written
    applier.apply(ops)  # the retry (the 3rd trial's run exists: it is reopened, not doubled)
    assert ops == []
    _check_children(applier, trials=6, epochs=3)


def test_a_retried_trial_is_written_life_by_life(applier: ChildRuns) -> None:
    ops = [
        {"op": "start", "trial": "r", "name": "r", "params": {"lr": 0.01, "T": 4}},
        {"op": "result", "trial": "r", "step": 1, "time": 1, "metrics": {"val_acc": 0.1}},
        {"op": "close", "trial": "r", "status": "FAILED",
         "tags": {M.STATUS_TAG: "errored"}, "error": "ValueError: boom"},
        {"op": "start", "trial": "r", "name": "r", "params": {"lr": 0.01, "T": 4}},
        {"op": "result", "trial": "r", "step": 2, "time": 2, "metrics": {"val_acc": 0.2}},
        {"op": "close", "trial": "r", "status": "FINISHED",
         "tags": {M.STATUS_TAG: "completed"}, "error": None},
    ]
    applier.apply(ops)
    _, children = sweep_runs(applier.tracking_uri, parent_run_id=applier.parent_run_id)
    (child,) = children
    assert child.info.status == "FINISHED" and child.data.tags[M.STATUS_TAG] == "completed"
    assert child.data.metrics["val_acc"] == 0.2
