"""Whole batches for the depth DataLoader: preallocated, reused buffers and the pass-through
collate (``KittiRawDataset.__getitems__`` builds a batch in one gather; issue 20, part 4).

Why reuse: a fresh 4.4 MB frame buffer per batch (192×640, 12 triplets) costs ~1,100 page faults,
each zeroing a page; measured on a 2-core VM it took as long as the gather itself in ordinary
memory and several times longer in shared memory. Reused buffers make a batch one copy; the small
fields (K, indices, poses) travel by value.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable
from typing import Any

import numpy as np
import torch


class BatchBuffers:
    """Preallocated frame buffers of whole batches, reused across batches.

    - In the training process (``num_workers=0``) a buffer is reused only when nothing else holds
      its storage any more (the loop dropped that batch); buffers are pinned when ``pin`` is set
      and CUDA is available, so the host→GPU copy is asynchronous and no pinning copy is made.
    - In a DataLoader worker the buffers live in shared memory (the training process maps them by
      file descriptor, no copy) and are reused round-robin over ``ring`` slots. A worker cannot
      see when the training process lets go of a batch, so this relies on the DataLoader's order:
      a worker receives its next index only after one of its batches was handed to the loop, so
      with ``ring`` ≥ ``prefetch_factor + 2`` (default 2 + 2) a batch stays intact while the loop
      holds it and asks for the next. A caller that keeps batches longer (``list(loader)``) must
      ``clone()`` them.

    Args:
        ring: shared-memory buffers per worker.
    """

    MAX_LOCAL = 8  # buffers held in the training process; past it batches are freshly allocated

    def __init__(self, *, ring: int = 4) -> None:
        self.ring = ring
        self._held: dict[Any, list[torch.Tensor]] = {}
        self._turn = -1
        self._sent: set[Hashable] = set()  # slots whose storage the training process has
        self._nonce = os.urandom(8).hex()  # tells this process's slots from a reused pid's

    def __getstate__(self) -> dict:
        return {"ring": self.ring}  # each process keeps its own buffers

    def __setstate__(self, state: dict) -> None:
        self.__init__(ring=state["ring"])  # type: ignore[misc]

    def _ring_slot(self, shape: tuple[int, ...]) -> tuple[int, torch.Tensor]:
        """The next shared buffer of ``shape`` (round-robin) and its index in the ring (a
        buffer keeps its index: the ring only grows)."""
        ring = self._held.setdefault((shape, "shared"), [])
        self._turn = (self._turn + 1) % self.ring
        if len(ring) <= self._turn:
            ring.append(_shared(shape))
        slot = self._turn % len(ring)
        return slot, ring[slot]

    def worker_frames(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, Any]:
        """Inside a DataLoader worker: the next ring slot to gather into, and what to put in
        the batch in its place (it arrives in the training process as that slot's tensor).

        Why not send the tensor: a worker sends a shared-memory tensor as a file descriptor,
        and the training process fetches that descriptor from the worker over a Unix socket
        and maps it again for every batch, although the ring reuses the same few buffers
        (≈ 0.4 ms per batch on the 2-core VM, a third of the gather itself). So each slot's storage is
        sent once; afterwards only its key travels, and the training process looks the
        mapping it already has up (:func:`_received_slot`)."""
        slot, frames = self._ring_slot(shape)
        key = (os.getpid(), self._nonce, slot, shape)
        first = key not in self._sent
        self._sent.add(key)
        return frames, _SlotRef(key, frames if first else None)

    def frames(self, shape: tuple[int, ...], *, pin: bool) -> torch.Tensor:
        """In the training process: an empty uint8 tensor of ``shape`` to gather one batch's
        frames into (a DataLoader worker uses :meth:`worker_frames`)."""
        pin = pin and torch.cuda.is_available()
        held = self._held.setdefault((shape, pin), [])
        for buffer in held:
            if _only_owner(buffer):
                return buffer
        buffer = torch.empty(shape, dtype=torch.uint8, pin_memory=pin)
        if len(held) < self.MAX_LOCAL:
            held.append(buffer)
        return buffer


class _ByValue:
    """A small array that a DataLoader worker sends by value and that arrives as a tensor.

    Why: a worker sends every CPU tensor through a new shared-memory segment and a file
    descriptor, ≈ 0.2 ms of the training process's CPU per tensor (measured here); K, the indices
    and the poses of a batch are a few hundred bytes, cheaper pickled as bytes.
    """

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __reduce__(self) -> tuple[Any, tuple[np.ndarray]]:
        return torch.from_numpy, (self.array,)


# The training process's view of the workers' ring slots: key -> the mapped tensor.
_RECEIVED: dict[Hashable, torch.Tensor] = {}
_RECEIVED_LOCK = threading.Lock()


class _SlotRef:
    """A worker's ring slot in a batch: pickles as ``(key, tensor)`` the first time (the
    storage travels as usual, once) and as the key alone afterwards."""

    def __init__(self, key: Hashable, tensor: torch.Tensor | None) -> None:
        self.key, self.tensor = key, tensor

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self.tensor is not None:
            return _register_slot, (self.key, self.tensor)
        return _received_slot, (self.key,)


def _register_slot(key: Hashable, tensor: torch.Tensor) -> torch.Tensor:
    """Keeps a slot's tensor for the later batches that name it; the slots of workers that
    have exited are let go (each holds a batch-sized buffer)."""
    with _RECEIVED_LOCK:
        for old in [k for k in _RECEIVED if not _alive(k[0])]:  # type: ignore[index]
            del _RECEIVED[old]
        _RECEIVED[key] = tensor
    return tensor


def _received_slot(key: Hashable) -> torch.Tensor:
    with _RECEIVED_LOCK:
        tensor = _RECEIVED.get(key)
    if tensor is None:  # cannot happen while the worker lives: its slots are kept
        raise RuntimeError(f"batch buffer {key} of a DataLoader worker is unknown here")
    return tensor


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def small(array: np.ndarray) -> torch.Tensor:
    """``array`` as a tensor; inside a DataLoader worker, wrapped to travel by value."""
    from torch.utils.data import get_worker_info

    array = np.ascontiguousarray(array)
    if get_worker_info() is not None:
        return _ByValue(array)  # type: ignore[return-value]  # a tensor once unpickled
    return torch.from_numpy(array)


def _shared(shape: tuple[int, ...]) -> torch.Tensor:
    """A uint8 tensor in shared memory (what the default collate does inside a worker)."""
    storage = torch.UntypedStorage._new_shared(int(np.prod(shape)))
    return torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)


def _only_owner(buffer: torch.Tensor) -> bool:
    """True when no tensor but ``buffer`` uses its storage (torch's storage use count; ``buffer``
    and the temporary storage object make 2). Without that private call nothing is reused."""
    count = getattr(torch._C, "_storage_Use_Count", None)
    return count is not None and count(buffer.untyped_storage()._cdata) <= 2


def pass_batch(batch: Any) -> Any:
    """``collate_fn`` for datasets whose ``__getitems__`` returns a whole batch."""
    return batch
