"""Datasets: MNIST / FashionMNIST tensors (``mnist``), KITTI raw and synthetic scenes (depth)."""

from snnsearch.data.mnist import (
    DATASETS,
    TensorSplits,
    default_data_root,
    iterate_batches,
    load_classification,
)

__all__ = ["DATASETS", "TensorSplits", "default_data_root", "iterate_batches", "load_classification"]
