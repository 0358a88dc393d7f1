"""MNIST and FashionMNIST as device-resident tensors with a seeded train/validation split.

Datasets are read through torchvision's own classes (md5 checks, IDX parsing). The whole set is then
kept as one float tensor on the training device and batches are indexed there: MNIST is 47 MB, and a
DataLoader with workers costs more than the small SNNs it feeds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from snnsearch.registry import Registry

DATASETS: Registry[type] = Registry("dataset")
RAW_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _torchvision_classes() -> None:
    from torchvision import datasets

    DATASETS.register("mnist")(datasets.MNIST)
    DATASETS.register("fashion")(datasets.FashionMNIST)


_torchvision_classes()


def default_data_root() -> Path:
    """``$SNNSEARCH_DATA`` or ``~/.cache/snnsearch/data``."""
    env = os.environ.get("SNNSEARCH_DATA")
    return Path(env) if env else Path.home() / ".cache" / "snnsearch" / "data"


@dataclass(frozen=True)
class TensorSplits:
    """Images ``[N, 1, 28, 28]`` in [0, 1] and int64 labels, already on the target device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def num_classes(self) -> int:
        return 10


def _load_split(name: str, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    cls = DATASETS.get(name)
    try:
        # download=True is what makes torchvision accept the official .gz files offline: it
        # verifies their md5, extracts them locally and only goes to the network if they are absent.
        ds = cls(str(root), train=train, download=True)
    except Exception as err:
        raw = root / cls.__name__ / "raw"
        raise RuntimeError(
            f"{name} files missing or corrupted (md5 mismatch) under {raw} and the download "
            f"failed ({type(err).__name__}); "
            f"put {', '.join(RAW_FILES)} there or pass --data-dir / set SNNSEARCH_DATA"
        ) from None
    raw = root / cls.__name__ / "raw"
    expected = 60000 if train else 10000
    if tuple(ds.data.shape) != (expected, 28, 28) or len(ds.targets) != expected:
        # torchvision trusts already-extracted IDX files; a truncated one loads as a wrong shape.
        raise RuntimeError(
            f"{name} files under {raw} are corrupted (images {tuple(ds.data.shape)}, "
            f"{len(ds.targets)} labels; expected ({expected}, 28, 28)); delete the extracted files "
            f"and put fresh {', '.join(RAW_FILES)} there"
        )
    images = ds.data.unsqueeze(1).float().div_(255.0)
    return images, ds.targets.long()


def load_classification(
    name: str,
    *,
    root: str | Path | None = None,
    val_size: int = 5000,
    split_seed: int = 0,
    train_subset: int | None = None,
    device: str | torch.device = "cpu",
) -> TensorSplits:
    """Loads ``name`` ("mnist" | "fashion") with a seeded train/validation split.

    Args:
        name: registered dataset name.
        root: data root holding ``MNIST/raw`` or ``FashionMNIST/raw``; default :func:`default_data_root`.
        val_size: images held out of the official training set for model selection.
        split_seed: seed of the split permutation (fixed per sweep so trials compare fairly).
        train_subset: keep only this many training images (smoke runs); validation and test
            shrink proportionally to at most the same size.
        device: where the tensors live.
    """
    data_root = Path(root) if root is not None else default_data_root()
    data_root.mkdir(parents=True, exist_ok=True)
    x, y = _load_split(name, data_root, train=True)
    test_x, test_y = _load_split(name, data_root, train=False)
    if not 0 < val_size < len(x):
        raise ValueError(f"val_size must be in 1..{len(x) - 1} (got {val_size})")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    if train_subset is not None:
        if train_subset < 1:
            raise ValueError(f"train_subset must be >= 1 (got {train_subset})")
        train_idx = train_idx[:train_subset]
        val_idx = val_idx[: max(1, min(val_size, train_subset))]
        test_x, test_y = test_x[:train_subset], test_y[:train_subset]
    dev = torch.device(device)
    return TensorSplits(
        x[train_idx].to(dev), y[train_idx].to(dev), x[val_idx].to(dev), y[val_idx].to(dev),
        test_x.to(dev), test_y.to(dev),
    )


def iterate_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
):
    """Yields ``(x, y)`` batches; shuffled with ``generator`` when given (CPU generator, so the
    order is identical on CPU and GPU and can be checkpointed)."""
    n = len(x)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    order = order.to(x.device)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx]
