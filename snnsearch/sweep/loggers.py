"""Which of Ray Tune's per-trial file loggers a sweep keeps: only ``result.json``.

Ray adds a CSV, a JSON and a TensorBoardX logger to every run unless it finds one of each type
among the callbacks. All three write every result of every trial on the driver thread; the
TensorBoardX one also ``fsync``s its event file, and in a profile of 600 trivial results it took
more driver time than anything but the experiment snapshots (docs/benchmarks.md). ``result.json``
is the one that is read back (``Result.metrics_dataframe`` prefers it; the sweep history rebuilds
from it), MLflow is the viewer, so the CSV and TensorBoard files are dropped by handing Ray
stand-ins of those two types that write nothing. (Not ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS``: a
process-wide switch, and it would also drop ``result.json`` when resuming an older sweep whose
stored callbacks do not carry a JSON logger.)
"""

from __future__ import annotations

from typing import Any

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback
from ray.tune.logger.tensorboardx import TBXLoggerCallback


class _WritesNothing:
    def log_trial_start(self, trial: Any) -> None:
        return None

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        return None

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        return None


class NoCsvLogger(_WritesNothing, CSVLoggerCallback):
    """Takes the CSV logger's place (``progress.csv`` duplicates ``result.json``)."""


class NoTensorboardLogger(_WritesNothing, TBXLoggerCallback):
    """Takes the TensorBoardX logger's place (MLflow shows the curves)."""

    def __init__(self) -> None:
        LoggerCallback.__init__(self)  # not TBXLoggerCallback's: it imports tensorboardX


def result_loggers() -> list[LoggerCallback]:
    """The file loggers of a sweep: ``result.json`` only."""
    return [JsonLoggerCallback(), NoCsvLogger(), NoTensorboardLogger()]
