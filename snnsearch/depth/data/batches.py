"""Whole batches for the depth DataLoader: preallocated, reused buffers and the pass-through
collate (``KittiRawDataset.__getitems__`` builds a batch in one gather; issue 20, part 4).

Why reuse: a fresh 4.4 MB frame buffer per batch (192×640, 12 triplets) costs ~1,100 page faults,
each zeroing a page; measured on a 2-core VM it took as long as the gather itself in ordinary
memory and several times longer in shared memory, and every small tensor (K, indices) sent from a
worker in fresh shared memory costs a new segment (≈ 0.5 ms). Reused buffers make a batch one copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

Specs = dict[str, tuple[tuple[int, ...], torch.dtype]]


class BatchBuffers:
    """Sets of preallocated batch tensors (one tensor per field), reused across batches.

    - In the training process (``num_workers=0``) a set is reused only when nothing else holds
      any of its storages (the loop dropped that batch); sets are pinned when ``pin`` is set and
      CUDA is available, so the host→GPU copy is asynchronous and no pinning copy is made.
    - In a DataLoader worker the sets live in shared memory (the training process maps them by
      file descriptor, no copy) and are reused round-robin over ``ring`` slots. A worker cannot
      see when the training process lets go of a batch, so this relies on the DataLoader's order:
      a worker receives its next index only after one of its batches was handed to the loop, so
      with ``ring`` ≥ ``prefetch_factor + 2`` (default 2 + 2) a batch stays intact while the loop
      holds it and asks for the next. A caller that keeps batches longer (``list(loader)``) must
      ``clone()`` them.

    Args:
        ring: shared-memory sets per worker.
    """

    MAX_LOCAL = 8  # sets held in the training process; past it batches are freshly allocated

    def __init__(self, *, ring: int = 4) -> None:
        self.ring = ring
        self._sets: dict[Any, list[dict[str, torch.Tensor]]] = {}
        self._turn = -1

    def __getstate__(self) -> dict:
        return {"ring": self.ring}  # each process keeps its own buffers

    def __setstate__(self, state: dict) -> None:
        self.__init__(ring=state["ring"])  # type: ignore[misc]

    def batch(self, specs: Specs, *, pin: bool) -> dict[str, torch.Tensor]:
        """Empty tensors of ``specs`` (name → (shape, dtype)) to fill with one batch."""
        from torch.utils.data import get_worker_info

        key = tuple(sorted((k, v[0], str(v[1])) for k, v in specs.items()))
        if get_worker_info() is not None:
            sets = self._sets.setdefault((key, "shared"), [])
            self._turn = (self._turn + 1) % self.ring
            if len(sets) <= self._turn:
                sets.append({k: _shared(shape, dtype) for k, (shape, dtype) in specs.items()})
            return sets[self._turn % len(sets)]
        pin = pin and torch.cuda.is_available()
        sets = self._sets.setdefault((key, pin), [])
        for held in sets:
            if all(_only_owner(t) for t in held.values()):
                return held
        fresh = {k: torch.empty(shape, dtype=dtype, pin_memory=pin)
                 for k, (shape, dtype) in specs.items()}
        if len(sets) < self.MAX_LOCAL:
            sets.append(fresh)
        return fresh


def _shared(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A tensor in shared memory (what the default collate does inside a worker)."""
    n = int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size()
    storage = torch.UntypedStorage._new_shared(n)
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)


def _only_owner(buffer: torch.Tensor) -> bool:
    """True when no tensor but ``buffer`` uses its storage (torch's storage use count; ``buffer``
    and the temporary storage object make 2). Without that private call nothing is reused."""
    count = getattr(torch._C, "_storage_Use_Count", None)
    return count is not None and count(buffer.untyped_storage()._cdata) <= 2


def pass_batch(batch: Any) -> Any:
    """``collate_fn`` for datasets whose ``__getitems__`` returns a whole batch."""
    return batch
