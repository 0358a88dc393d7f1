"""Checkpoint files: one ``state.pt`` per checkpoint directory (the layout Ray Tune copies).

Loaded with ``weights_only=True`` so a checkpoint cannot execute code; the state therefore holds
only tensors, numbers, strings, lists and dicts (RNG states are tensors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

STATE_FILE = "state.pt"


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Writes ``state`` to ``directory/state.pt`` (atomically: a killed trial leaves no torn file)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path / STATE_FILE)
    return path / STATE_FILE


def load_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Reads a checkpoint written by :func:`save_checkpoint` (or a bare ``.pt`` file path)."""
    path = Path(directory)
    file = path if path.is_file() else path / STATE_FILE
    if not file.exists():
        raise FileNotFoundError(
            f"checkpoint not found: {file} (expected a directory holding {STATE_FILE} or a .pt file)"
        )
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt or foreign pickles end here, with the path named
        raise ValueError(f"checkpoint {file} cannot be read ({type(err).__name__}: {err})") from err
