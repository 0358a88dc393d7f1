from __future__ import annotations

from pathlib import Path

import pytest
import torch

from snnsearch.classify.data import iterate_batches, load_classification


def test_mnist_split_from_shared_files(mnist_root: Path) -> None:
    data = load_classification("mnist", root=mnist_root, val_size=5000, split_seed=0)
    assert data.train_x.shape == (55000, 1, 28, 28) and data.val_x.shape == (5000, 1, 28, 28)
    assert data.test_x.shape == (10000, 1, 28, 28)
    assert 0.0 <= float(data.train_x.min()) and float(data.train_x.max()) <= 1.0
    full_mean = (data.train_x.sum() + data.val_x.sum()) / (60000 * 784)
    assert float(full_mean) == pytest.approx(0.1307, abs=1e-3)  # official normalisation constant
    assert torch.bincount(data.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    again = load_classification("mnist", root=mnist_root, split_seed=0)
    other = load_classification("mnist", root=mnist_root, split_seed=1)
    assert torch.equal(again.val_y, data.val_y) and not torch.equal(other.val_y, data.val_y)


def test_fashion_subset(mnist_root: Path) -> None:
    data = load_classification("fashion", root=mnist_root, train_subset=500, val_size=5000)
    assert len(data.train_x) == 500 and len(data.val_x) == 500 and len(data.test_x) == 500
    assert int(load_classification("fashion", root=mnist_root).train_y[0]) in range(10)


def test_missing_files_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"mnist files missing or corrupted \(md5 mismatch\) under .*MNIST/raw.*put train-images-idx3-ubyte.gz") as info:
        load_classification("mnist", root=tmp_path)
    assert "\n" not in str(info.value)


def test_corrupt_file_is_reported(tmp_path: Path, shared_data: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for file in (shared_data / "MNIST" / "raw").iterdir():
        (raw / file.name).symlink_to(file)
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not a gzip file")
    with pytest.raises(RuntimeError, match="missing or corrupted"):
        load_classification("mnist", root=tmp_path)


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_classification("cifar", root=tmp_path)


def test_iterate_batches_covers_everything_in_seeded_order() -> None:
    x, y = torch.arange(10).float(), torch.arange(10)
    batches = list(iterate_batches(x, y, 4, generator=torch.Generator().manual_seed(3)))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(10))
    again = list(iterate_batches(x, y, 4, generator=torch.Generator().manual_seed(3)))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again))


def test_short_extracted_file_is_reported_as_corrupted(tmp_path: Path, shared_data: Path) -> None:
    """A well-formed but short IDX file (e.g. from an interrupted copy) is not silently used."""
    import struct

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for file in (shared_data / "MNIST" / "raw").iterdir():
        (raw / file.name).symlink_to(file)
    load_classification("mnist", root=tmp_path, train_subset=10)  # extracts the IDX files
    (raw / "t10k-images-idx3-ubyte.gz").unlink()
    (raw / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, 10, 28, 28) + bytes(7840))
    with pytest.raises(RuntimeError, match=r"are corrupted \(images \(10, 28, 28\)"):
        load_classification("mnist", root=tmp_path)
