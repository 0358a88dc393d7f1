"""A full ``--storage``: how much room a sweep needs, how much is left, and the one line that
says so.

A sweep that runs its storage full loses more than the write that failed: Ray uploads the
experiment state and trial checkpoints non-atomically, so a full disk leaves truncated files
(a truncated ``error.pkl`` crashed the driver with ``EOFError``; a truncated experiment state
no longer matches its signature and ``--resume`` refused it). The sweep therefore stops
*before* the disk is full: the driver checks the free space every loop step
(``snnsearch.sweep.interrupts.DiskGuard``) and, below :func:`needed_bytes`, stops the sweep the
way Ctrl-C does (state saved while there is still room, trials resumable). A write that fails
with ENOSPC anyway (another program filled the disk) is recognised by :func:`is_disk_full` and
ends the sweep with the same line.

Only local (and NFS-mounted) storage can be measured; object stores (s3://, gs://) have no
"free space", so there the guard does nothing.

Like the rest of this package, it imports nothing of snnsearch.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

MIN_FREE_ENV = "SNNSEARCH_MIN_FREE_BYTES"
MIN_FREE_BYTES = 64 * 2**20  # the floor: Ray's state, logs and one small checkpoint
CHECKPOINT_MARGIN = 3  # room for this many of the largest checkpoint per running trial
ENOSPC_TEXT = os.strerror(errno.ENOSPC)  # "No space left on device"


def free_bytes(path: str) -> int | None:
    """Bytes free to this user where ``path`` lives (its nearest existing parent), None for
    object stores."""
    if "://" in path:
        return None
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def largest_checkpoint(sweep_dir: str) -> int:
    """Size in bytes of the largest trial checkpoint in ``sweep_dir`` (0 if none yet)."""
    if "://" in sweep_dir:
        return 0
    return max((checkpoint_bytes(str(c)) for c in Path(sweep_dir).glob("*/checkpoint_*")),
               default=0)


def checkpoint_bytes(path: str) -> int:
    """Size in bytes of one checkpoint folder (0 on an object store, or if it is gone)."""
    if "://" in path:
        return 0
    try:
        return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    except OSError:
        return 0


def state_bytes(sweep_dir: str) -> int:
    """Size of the experiment state Ray rewrites whole at every snapshot (0 on an object
    store)."""
    if "://" in sweep_dir:
        return 0
    return sum(p.stat().st_size for p in Path(sweep_dir).glob("experiment_state-*.json"))


def needed_bytes(sweep_dir: str, running: int, *, largest: int | None = None,
                 state: int | None = None) -> int:
    """Free space a sweep needs to go on: :data:`CHECKPOINT_MARGIN` of its largest checkpoint
    per running trial plus twice its experiment state, at least ``SNNSEARCH_MIN_FREE_BYTES``
    (default 64 MiB). ``largest`` and ``state`` (when the caller tracks them) spare the walk
    over every trial's folder, which grows with the sweep."""
    floor = int(os.environ.get(MIN_FREE_ENV, MIN_FREE_BYTES))
    state = state_bytes(sweep_dir) if state is None else state
    largest = largest_checkpoint(sweep_dir) if largest is None else largest
    return max(floor, CHECKPOINT_MARGIN * max(running, 1) * largest + 2 * state)


def is_disk_full(err: BaseException | str | None) -> bool:
    """Whether ``err`` (an exception, its chain, or an error text) is ENOSPC."""
    seen = 0
    while isinstance(err, BaseException) and seen < 16:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        if ENOSPC_TEXT in str(err) or "ENOSPC" in str(err):
            return True
        err = err.__cause__ or err.__context__
        seen += 1
    return isinstance(err, str) and (ENOSPC_TEXT in err or "errno 28" in err.lower())


def errored_by_disk_full(sweep_dir: str) -> bool:
    """Whether a trial of ``sweep_dir`` failed with ENOSPC (its ``error.txt`` says so): those
    trials are resumed from their checkpoints, not kept as errored."""
    if "://" in sweep_dir:
        return False
    for error in Path(sweep_dir).glob("*/error.txt"):
        try:
            if is_disk_full(error.read_text(errors="replace")[-4000:]):
                return True
        except OSError:
            continue
    return False


def disk_full_message(storage: str, *, free: int | None, needed: int) -> str:
    """The one line a sweep stopped by a full storage ends with."""
    left = "unknown" if free is None else f"{free} bytes free"
    return (f"storage {storage} is full ({left}; the sweep needs about {needed} bytes more to "
            "go on); its state is saved: free space there, then continue with --resume")
