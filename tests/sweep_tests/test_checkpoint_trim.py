"""The checkpoint trimmer fed by hand (no Ray run): a trial's old checkpoints go only after two
later experiment snapshots name a newer one, the newest ``keep`` always stay, and a restored
trimmer deletes nothing before it has seen snapshots of its own."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from pyarrow.fs import LocalFileSystem

from snnsearch.sweep.checkpoint_trim import CheckpointTrimmer, checkpoint_index


@dataclass
class FakeTrial:
    """The slice of a Tune trial the trimmer reads: its folder and its latest checkpoint."""

    folder: Path
    trial_id: str = "t1"
    status: str = "RUNNING"
    checkpoint: SimpleNamespace | None = None
    storage: SimpleNamespace = field(init=False)

    def __post_init__(self) -> None:
        self.storage = SimpleNamespace(storage_filesystem=LocalFileSystem(),
                                       trial_fs_path=str(self.folder))

    def save(self, index: int) -> None:
        path = self.folder / f"checkpoint_{index:06d}"
        path.mkdir(parents=True)
        (path / "state.json").write_text("{}")
        self.checkpoint = SimpleNamespace(path=str(path))


def _left(trial: FakeTrial) -> list[int]:
    return sorted(i for p in trial.folder.iterdir() if (i := checkpoint_index(str(p))) is not None)


def test_old_checkpoints_go_only_after_two_later_snapshots(tmp_path: Path) -> None:
    trial = FakeTrial(tmp_path / "trial")
    trimmer = CheckpointTrimmer(keep=1)
    for index in range(3):  # three checkpoints, then a snapshot naming #2
        trial.save(index)
        trimmer.on_checkpoint(0, [], trial, trial.checkpoint)
    trimmer.get_state()
    trial.save(3)
    trimmer.on_checkpoint(0, [], trial, trial.checkpoint)
    trimmer.get_state()  # names #3; the first snapshot (#2) may still be the stored one
    assert _left(trial) == [0, 1, 2, 3]
    trial.save(4)
    trimmer.on_checkpoint(0, [], trial, trial.checkpoint)
    trimmer.get_state()  # names #4: the stored snapshot names #2 or later
    assert _left(trial) == [2, 3, 4]
    trimmer.get_state()
    trimmer.get_state()  # three snapshots all name #4: only the newest stays
    assert _left(trial) == [4]
    restored = pickle.loads(pickle.dumps(trimmer))
    trial.save(5)
    restored.on_checkpoint(0, [], trial, trial.checkpoint)
    restored.get_state()
    assert _left(trial) == [4, 5]  # nothing deleted before the new driver's own snapshots


def test_keep_keeps_the_newest_checkpoints(tmp_path: Path) -> None:
    trial = FakeTrial(tmp_path / "trial")
    trimmer = CheckpointTrimmer(keep=3)
    for index in range(6):
        trial.save(index)
        trimmer.on_checkpoint(0, [], trial, trial.checkpoint)
        trimmer.get_state()
    for _ in range(3):
        trimmer.get_state()
    assert _left(trial) == [3, 4, 5]


def test_finished_trials_keep_only_their_newest_at_the_end(tmp_path: Path) -> None:
    done, running = FakeTrial(tmp_path / "done", "d"), FakeTrial(tmp_path / "run", "r")
    trimmer = CheckpointTrimmer(keep=1)
    for index in range(3):
        for trial in (done, running):
            trial.save(index)
            trimmer.on_checkpoint(0, [], trial, trial.checkpoint)
    done.status = "TERMINATED"
    trimmer.on_experiment_end([done, running])
    assert _left(done) == [2] and _left(running) == [0, 1, 2]  # a cut trial keeps the rule


def test_ray_forgets_the_deleted_checkpoints(tmp_path: Path) -> None:
    trial = FakeTrial(tmp_path / "trial")
    trimmer = CheckpointTrimmer(keep=1)
    results = []
    for index in range(3):
        trial.save(index)
        results.append(SimpleNamespace(checkpoint=trial.checkpoint))
        trimmer.on_checkpoint(0, [], trial, trial.checkpoint)
    invalidated = []
    manager = SimpleNamespace(_checkpoint_results=list(results),
                              latest_checkpoint_result=results[-1])
    trial.run_metadata = SimpleNamespace(checkpoint_manager=manager,  # type: ignore[attr-defined]
                                         invalidate_cache=lambda: invalidated.append(1))
    trial.status = "TERMINATED"
    trimmer.on_experiment_end([trial])
    assert manager._checkpoint_results == [results[-1]] and invalidated  # memory stays O(keep)


def test_the_best_checkpoint_by_the_metric_stays(tmp_path: Path) -> None:
    """The selected epoch (best val value; ``snnsearch.evaluate`` tests it) survives every trim,
    in the snapshot rule and at the end, and stays in Ray's list so a restore knows it."""
    trial = FakeTrial(tmp_path / "trial")
    trimmer = CheckpointTrimmer(keep=1, metric="val_acc", mode="max")
    manager = SimpleNamespace(_checkpoint_results=[], latest_checkpoint_result=None)
    trial.run_metadata = SimpleNamespace(checkpoint_manager=manager,  # type: ignore[attr-defined]
                                         invalidate_cache=lambda: None)
    for index, acc in enumerate([0.5, 0.9, float("nan"), 0.7, 0.8]):
        trial.save(index)
        result = SimpleNamespace(checkpoint=trial.checkpoint, metrics={"val_acc": acc})
        manager._checkpoint_results.append(result)  # the trimmer may have replaced the list
        manager.latest_checkpoint_result = result
        trimmer.on_checkpoint(0, [], trial, trial.checkpoint)
        trimmer.get_state()
    for _ in range(3):
        trimmer.get_state()
    assert _left(trial) == [1, 4]
    trial.status = "TERMINATED"
    trimmer.on_experiment_end([trial])
    assert _left(trial) == [1, 4]
    assert [checkpoint_index(str(r.checkpoint.path)) for r in manager._checkpoint_results] == [1, 4]
    minimising = CheckpointTrimmer(keep=1, metric="val_acc", mode="min")
    assert minimising.best_index(trial) == 4  # of the two left, 0.8 < 0.9
