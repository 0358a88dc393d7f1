"""Old trial checkpoints deleted without forcing an experiment snapshot per checkpoint.

Ray 2.60's ``CheckpointConfig(num_to_keep=k)`` deletes a trial's older checkpoints itself, and to
keep its experiment snapshot from pointing at a deleted one it *forces* a snapshot whenever a
trial has checkpointed ``k`` times since the last (``_ExperimentCheckpointManager.
on_trial_checkpoint``). Our trainables checkpoint every epoch, so with ``k=1`` every result
forced a full snapshot: every trial's JSON state, the pickled Optuna study and the callbacks'
state, O(trials) work per result (measured in docs/benchmarks.md: the largest share of the
driver's time). With this callback Ray keeps every checkpoint (``num_to_keep=None``: no forced
snapshots; Ray's own period ``TUNE_GLOBAL_CHECKPOINT_S``, ``auto`` = at most 5% of the time, at
least every 10 s) and the callback deletes the old ones with the same guarantee: a checkpoint
goes only once two later snapshots (the one before may still be syncing to the storage) refer to
a newer one, and the newest ``keep`` of each trial always stay. Resume therefore always finds
the checkpoint its snapshot names. The trial's best checkpoint by the sweep's metric also stays
(as Ray's ``checkpoint_score_attribute`` would keep it): it is the selected epoch, the one
``snnsearch.evaluate`` tests, whatever ``--keep-checkpoints`` says.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any

from ray.tune import Callback

log = logging.getLogger(__name__)
PREFIX = "checkpoint_"


def checkpoint_index(path: str) -> int | None:
    """``7`` for ``.../checkpoint_000007``; None for anything else."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if not name.startswith(PREFIX) or not name[len(PREFIX):].isdigit():
        return None
    return int(name[len(PREFIX):])


class CheckpointTrimmer(Callback):
    """Keeps the newest ``keep`` checkpoints of each trial, deleting older ones only when no
    experiment snapshot that may still be the latest on the storage refers to them.

    Ray calls ``get_state`` of every callback while it writes a snapshot, which is how this one
    sees each snapshot. Picklable (``tuner.pkl``): the trial map and views start empty after a
    restore, so nothing is deleted before two snapshots of the new driver.

    Args:
        keep: checkpoints kept per trial (``--keep-checkpoints``), at least 1.
        metric: the sweep's metric; the checkpoint reported with its best value is kept too.
        mode: ``"min"`` or ``"max"`` for ``metric``.
    """

    def __init__(self, *, keep: int, metric: str | None = None, mode: str = "max") -> None:
        self.keep = max(1, int(keep))
        self.metric = metric
        self.mode = mode
        self._trials: dict[str, Any] = {}
        self._dirty: set[str] = set()
        self._views: deque[dict[str, int]] = deque(maxlen=3)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A trimmer pickled before ``metric``/``mode`` existed (an older sweep's tuner.pkl).
        self.__dict__.update({"metric": None, "mode": "max", **state})

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_trials"], state["_dirty"], state["_views"] = {}, set(), deque(maxlen=3)
        return state

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any,
                      **info: Any) -> None:
        self._trials[trial.trial_id] = trial
        self._dirty.add(trial.trial_id)

    def get_state(self) -> None:
        """A snapshot is being written: record what it refers to, trim what two earlier
        snapshots no longer need."""
        view = {}
        for trial_id, trial in self._trials.items():
            latest = getattr(trial, "checkpoint", None)
            index = checkpoint_index(str(latest.path)) if latest is not None else None
            if index is not None:
                view[trial_id] = index
        self._views.append(view)
        if len(self._views) < 3:
            return
        oldest = self._views[0]
        for trial_id in list(self._dirty):
            newest_kept = view.get(trial_id, -1) - self.keep + 1
            floor = min(oldest.get(trial_id, -1), newest_kept)
            if floor > 0 and self._trim(self._trials[trial_id], floor) and floor >= newest_kept:
                self._dirty.discard(trial_id)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Finished and errored trials keep only their newest ``keep``: resume never restores
        them from a checkpoint (``Tuner.restore(resume_errored=False)``), and the trials still
        running when the sweep was cut keep the snapshot rule above."""
        for trial in trials:
            if trial.trial_id not in self._dirty or trial.status not in ("TERMINATED", "ERROR"):
                continue
            latest = getattr(trial, "checkpoint", None)
            index = checkpoint_index(str(latest.path)) if latest is not None else None
            if index is not None and self._trim(trial, index - self.keep + 1):
                self._dirty.discard(trial.trial_id)

    def best_index(self, trial: Any) -> int | None:
        """The number of ``trial``'s checkpoint reported with the best value of the metric
        (Ray's in-memory list of the trial's checkpoints with their results; the best one is
        never pruned from it, so it is known after a restore too); None without a metric."""
        if self.metric is None:
            return None
        manager = getattr(getattr(trial, "run_metadata", None), "checkpoint_manager", None)
        best: tuple[float, int] | None = None
        for result in getattr(manager, "_checkpoint_results", None) or []:
            value = (getattr(result, "metrics", None) or {}).get(self.metric)
            index = checkpoint_index(str(result.checkpoint.path))
            if index is None or not isinstance(value, (int, float)) or math.isnan(value):
                continue
            score = -float(value) if self.mode == "max" else float(value)
            if best is None or score < best[0]:  # the first of equal values, as Ray keeps it
                best = (score, index)
        return None if best is None else best[1]

    def _trim(self, trial: Any, below: int) -> bool:
        """Deletes ``trial``'s checkpoints numbered below ``below``, except its best one;
        False on a storage error (tried again at the next snapshot)."""
        from pyarrow.fs import FileSelector, FileType

        best = self.best_index(trial)
        fs = trial.storage.storage_filesystem
        try:
            infos = fs.get_file_info(FileSelector(trial.storage.trial_fs_path))
            for info in infos:
                index = checkpoint_index(info.path)
                if (info.type == FileType.Directory and index is not None and index < below
                        and index != best):
                    fs.delete_dir(info.path)
        except OSError as err:
            log.warning("could not delete old checkpoints of %s: %s", trial, err)
            return False
        _forget(trial, below, best)
        return True


def _forget(trial: Any, below: int, best: int | None = None) -> None:
    """Drops the deleted checkpoints from Ray's in-memory list of the trial's checkpoints.

    Without ``num_to_keep`` Ray's ``_CheckpointManager`` (private; Ray 2.60) keeps every
    reported checkpoint with its metrics, in memory and in each experiment snapshot: the
    driver's memory and the snapshot would grow with trials x epochs. Nothing public prunes it.
    """
    metadata = getattr(trial, "run_metadata", None)
    manager = getattr(metadata, "checkpoint_manager", None)
    results = getattr(manager, "_checkpoint_results", None)
    if not isinstance(results, list):
        return
    kept = [r for r in results
            if (checkpoint_index(str(r.checkpoint.path)) or 0) >= below
            or checkpoint_index(str(r.checkpoint.path)) == best
            or r is getattr(manager, "latest_checkpoint_result", None)]
    if len(kept) != len(results):
        manager._checkpoint_results = kept
        metadata.invalidate_cache()
