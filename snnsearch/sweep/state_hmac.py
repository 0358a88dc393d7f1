"""The Ray side of the storage signatures (:mod:`snnsearch.storage.signing`): the Tune callback
that signs each experiment snapshot, the guard that keeps Ray from unpickling per-trial error
files, and the ``python -m snnsearch.sweep.state_hmac <sweep_dir>`` re-signing command.

``Tuner.restore`` unpickles ``tuner.pkl``, the experiment state (trial records are cloudpickled
inside the JSON) and the searcher state, so ``--resume`` checks their signatures first
(:func:`verify`). When signing happens: :class:`StateSigner` is a Tune callback whose
``get_state`` runs each time Tune snapshots the experiment, after the state files were written
to the driver's staging folder and before they are uploaded to the storage, so the storage never
holds a newer state than the signatures (a driver killed with SIGKILL resumes).

Per-trial ``error.pkl`` files are never signed and never loaded: Ray 2.60's ``ResultGrid``
(built inside ``Tuner.fit`` from the driver's Trial objects, ``ray/tune/result_grid.py``
``_populate_exception``) calls ``Trial.get_pickled_error``, which cloudpickle-loads
``<trial>/error.pkl`` from the storage whenever ``run_metadata.pickled_error_filename`` is set
(``ray/tune/experiment/trial.py``). :class:`TextErrorsOnly` clears that field in
``on_experiment_end`` (``TuneController.cleanup``, after the final snapshot, before ``fit``
builds the grid), so the grid falls back to ``Trial.get_error``: the text of ``error.txt``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from ray.tune import Callback

from snnsearch.storage import signing
from snnsearch.storage import sweepdir as _storage
from snnsearch.storage.signing import (  # re-exported: the sweep's callers use these names
    HMAC_KEY,
    KEEP,
    SETTINGS_FILE,
    SOURCE_KEY,
    load_key,
    sign,
    state_files,
)

log = logging.getLogger(__name__)


def verify(sweep_dir: str, *, name: str, files: list[str] | None = None) -> None:
    """Raises a one-line ValueError unless ``sweep.json`` and every state file (or those of
    ``files``) carry a known signature (:func:`snnsearch.storage.signing.verify_state`)."""
    signing.verify_state(sweep_dir, name=name, files=files)


def drop_pickled_errors(trials: list) -> None:
    """Makes Ray read each trial's error from ``error.txt``, never ``error.pkl`` (module doc)."""
    for trial in trials:
        metadata = getattr(trial, "run_metadata", None)
        if metadata is not None and getattr(metadata, "pickled_error_filename", None):
            metadata.pickled_error_filename = None


class TextErrorsOnly(Callback):
    """A Tune callback after which ``fit``'s result grid loads no ``error.pkl`` (module doc).

    Every Tuner of a sweep carries it (:class:`StateSigner` is one; ``--repeats`` adds it), and
    a restored Tuner gets it back from ``tuner.pkl``.
    """

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        drop_pickled_errors(trials)


class StateSigner(TextErrorsOnly):
    """Signs each experiment snapshot before Tune uploads it (see the module docstring).

    Args:
        sweep_dir: the sweep directory on the storage (where ``sweep.json`` lives).
        name: the sweep name (bound into every signature).
    """

    def __init__(self, *, sweep_dir: str, name: str) -> None:
        self.sweep_dir = sweep_dir
        self.name = name
        self._staging: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_staging": None}

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self._staging is None and trials:
            storage = getattr(trials[0], "storage", None)
            self._staging = getattr(storage, "experiment_driver_staging_path", None)

    def get_state(self) -> None:
        # Called by Tune's CallbackList.save_to_dir after the experiment and searcher state were
        # written to the staging folder; returns None so no callback-state file is written.
        try:
            if self._staging:
                sign(self.sweep_dir, name=self.name, source_dir=self._staging,
                     files=state_files(self._staging))
        except Exception as err:  # noqa: BLE001 - signing must not stop the sweep
            log.warning("could not sign the sweep state (%s: %s); --resume will refuse the "
                        "unsigned files", type(err).__name__, err)
        return None


def main(argv: list[str] | None = None) -> int:
    """``python -m snnsearch.sweep.state_hmac <sweep_dir>``: re-sign a sweep you trust."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m snnsearch.sweep.state_hmac <sweep_dir>", file=sys.stderr)
        return 2
    sweep_dir = _storage.normalize(args[0])
    name = sweep_dir.rstrip("/").rsplit("/", 1)[-1]
    sign(sweep_dir, name=name,
         files=[*state_files(sweep_dir), *signing.tables(sweep_dir)])
    print(f"signed the state files, tables and {SETTINGS_FILE} of {sweep_dir}")
    return 0


__all__ = ["HMAC_KEY", "KEEP", "SETTINGS_FILE", "SOURCE_KEY", "StateSigner", "TextErrorsOnly",
           "drop_pickled_errors", "load_key", "main", "sign", "state_files", "verify"]

if __name__ == "__main__":
    sys.exit(main())
