"""Bad input fails early with one line naming the problem and the fix: a corrupted dataset file,
missing KITTI frames, a checkpoint from an incompatible config, an unwritable storage path, and
an MLflow server that is down before the sweep starts (nothing runs, nothing is half-logged)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from snnsearch.classify.trainable import train_classifier
from snnsearch.sweep.cli import main
from snnsearch.testing.sweeps import free_port, sweep_runs
from snnsearch.training.reporter import LocalReporter

TINY_FC = {"dataset": "mnist", "model": "fc", "T": 2, "train_subset": 300, "val_size": 200,
           "hidden_width": 32, "batch_size": 64, "energy_images": 8, "epochs": 1,
           "device": "cpu", "figures": False}


def _writable_copy(src: Path, dst: Path) -> Path:
    """``dst`` mirroring ``src`` with symlinked files, so a test can delete or replace some."""
    for file in src.rglob("*"):
        if file.is_file():
            target = dst / file.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)
    return dst


@pytest.mark.parametrize("broken_name", ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"])
def test_corrupted_dataset_file_is_named_in_a_one_line_error(
    mnist_root: Path, tmp_path: Path, broken_name: str
) -> None:
    """A corrupt download (.gz fails torchvision's md5) or a truncated extracted IDX file."""
    root = _writable_copy(mnist_root, tmp_path / "data")
    raw = root / "MNIST" / "raw"
    extracted = raw / "train-images-idx3-ubyte"
    extracted.unlink(missing_ok=True)  # earlier tests may have extracted it into mnist_root
    if broken_name.endswith(".gz"):
        (raw / broken_name).unlink()
        (raw / broken_name).write_bytes(b"\x1f\x8b\x08 truncated by a failed copy")
    else:  # a truncated extracted file with no .gz left to re-extract it from
        (raw / "train-images-idx3-ubyte.gz").unlink()
        extracted.write_bytes(b"\x00\x00\x08\x03" + bytes(12))
    with pytest.raises(RuntimeError) as info:
        train_classifier({**TINY_FC, "data_dir": str(root)}, LocalReporter(tmp_path / "run"))
    message = str(info.value)
    assert "\n" not in message
    assert str(raw) in message and "train-images-idx3-ubyte.gz" in message
    assert "corrupted" in message


def test_missing_kitti_frame_is_named_in_the_error(shared_data: Path, tmp_path: Path) -> None:
    from snnsearch.depth.data.kitti import KittiRawDataset, image_path, scan_frames

    root = _writable_copy(shared_data / "kitti_raw_sample", tmp_path / "kitti")
    items = scan_frames(root)
    assert items, "the KITTI sample has no frame triplets"
    missing = image_path(root, items[0], items[0].frame + 1)
    missing.unlink()  # a frame lost after the split was written
    dataset = KittiRawDataset(root, items, height=64, width=128)
    with pytest.raises(FileNotFoundError) as info:
        dataset[0]
    assert str(missing) in str(info.value) and "\n" not in str(info.value)
    # The 'auto' split skips frames whose neighbours are gone instead of failing later.
    assert items[0] not in scan_frames(root)


def test_resume_from_an_incompatible_checkpoint_is_refused(
    mnist_root: Path, tmp_path: Path
) -> None:
    first = LocalReporter(tmp_path / "first")
    train_classifier({**TINY_FC, "data_dir": str(mnist_root)}, first)
    checkpoint = first.checkpoints[-1]
    wider = {**TINY_FC, "data_dir": str(mnist_root), "hidden_width": 64, "epochs": 2}
    with pytest.raises(ValueError) as info:
        train_classifier(wider, LocalReporter(tmp_path / "second", resume_from=checkpoint))
    message = str(info.value)
    assert "\n" not in message and str(checkpoint) in message
    assert "hidden_width: 32 vs 64" in message and "start a new sweep" in message


def _cli(space: Path, storage: Path, mlflow_uri: str, name: str = "bad") -> int:
    return main("faults", ["--space", str(space), "--storage", str(storage), "--name", name,
                           "--mlflow-uri", mlflow_uri])


def _tiny_space(write_space: Any, fault_trainable: str) -> Path:
    return write_space(fault_trainable, fixed={}, space={"x": {"float": [0, 1]}},
                       tune={"samples": 1, "max_epochs": 1, "scheduler": "fifo",
                             "metric": "val_acc", "mode": "max"})


def test_unwritable_storage_fails_before_ray_or_mlflow_start(
    ray_session: None, tmp_path: Path, write_space: Any, fault_trainable: str, mlflow_uri: str,
    capsys: pytest.CaptureFixture,
) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the storage directory should be")
    code = _cli(_tiny_space(write_space, fault_trainable), blocker / "ray", mlflow_uri,
                name="unwritable")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and "not writable" in err[0] and str(blocker / "ray") in err[0]
    assert "--storage" in err[0]
    parents, children = sweep_runs(mlflow_uri, experiment="faults")
    assert not [p for p in parents if p.info.run_name == "unwritable"]


def test_unreachable_mlflow_fails_before_any_trial_runs(
    ray_session: None, tmp_path: Path, write_space: Any, fault_trainable: str,
    capsys: pytest.CaptureFixture,
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    code = _cli(_tiny_space(write_space, fault_trainable), tmp_path / "ray", uri)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and uri in err[0] and "unreachable" in err[0]
    assert "--mlflow-uri" in err[0]
    assert time.monotonic() - start < 30
    assert not (tmp_path / "ray" / "bad").exists() or not any(
        (tmp_path / "ray" / "bad").glob("*/result.json"))
    shutil.rmtree(tmp_path / "ray", ignore_errors=True)
