"""Where a trainable sends its per-epoch metrics and checkpoints.

Trainables are written once against :class:`Reporter` and run either inside Ray Tune
(:class:`TuneReporter`: ``ray.tune.report`` with a checkpoint, ``ray.tune.get_checkpoint`` to resume)
or from plain Python / tests (:class:`LocalReporter`: keeps the history and copies checkpoints).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from snnsearch.energy.metrics import EnergySummary

# Where the per-layer energy table sits inside a checkpoint directory (MLflow logs it from there).
ENERGY_TABLE = "energy/layers.csv"


class Reporter(Protocol):
    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        """Publishes one epoch's metrics, with the checkpoint directory written for that epoch."""

    def restore_dir(self) -> str | None:
        """A checkpoint directory to resume from, or None for a fresh start."""


class TuneReporter:
    """Reports to Ray Tune from inside a function trainable (Ray 2.60 ``ray.tune`` API)."""

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        from ray import tune

        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(metrics, checkpoint=checkpoint)

    def restore_dir(self) -> str | None:
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        import pyarrow.fs

        if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
            return checkpoint.path  # read in place: no copy left in the temp dir
        # A remote (s3://) checkpoint is downloaded into a temp dir removed when the trial ends.
        target = tempfile.mkdtemp(prefix="snnsearch_restore_")
        atexit.register(shutil.rmtree, target, True)
        return checkpoint.to_directory(target)


class LocalReporter:
    """Plain-Python reporter: metric history in memory, checkpoints under ``workdir``.

    Args:
        workdir: where ``checkpoint_<epoch>`` copies are kept; None keeps none (the history
            only: what a trainable called without a reporter returns, so it leaves nothing in
            the temp dir).
        resume_from: a checkpoint directory to continue from (e.g. one from a previous run).
    """

    def __init__(
        self, workdir: str | Path | None = None, resume_from: str | Path | None = None
    ) -> None:
        self.workdir = Path(workdir) if workdir is not None else None
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.resume_from = str(resume_from) if resume_from is not None else None
        self.history: list[dict[str, Any]] = []
        self.checkpoints: list[Path] = []

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        self.history.append(dict(metrics))
        if checkpoint_dir is not None and self.workdir is not None:
            target = self.workdir / f"checkpoint_{len(self.history):06d}"
            shutil.copytree(checkpoint_dir, target, dirs_exist_ok=True)
            self.checkpoints.append(target)

    def restore_dir(self) -> str | None:
        return self.resume_from


def report_epoch(
    reporter: Reporter,
    metrics: dict[str, Any],
    state: dict[str, Any],
    write_figures: Callable[[Path], None] | None = None,
    energy: EnergySummary | None = None,
) -> None:
    """One epoch's report: ``state`` saved as a checkpoint in a temp dir, ``write_figures(folder)``
    adding PNGs under ``figures/``, the per-layer energy table as ``energy/layers.csv``, then
    ``reporter.report``. The temp dir is removed afterwards: Ray Tune (and
    :class:`LocalReporter`) have copied it by the time ``report`` returns."""
    from snnsearch.energy.metrics import write_layer_table
    from snnsearch.training.checkpoint import save_checkpoint

    checkpoint_dir = Path(tempfile.mkdtemp(prefix="snnsearch_ckpt_"))
    try:
        save_checkpoint(checkpoint_dir, state)
        if energy is not None:
            write_layer_table(energy, checkpoint_dir / ENERGY_TABLE)
        if write_figures is not None:
            write_figures(checkpoint_dir / "figures")
        reporter.report(metrics, str(checkpoint_dir))
    finally:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
