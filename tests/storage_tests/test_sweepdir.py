"""Every result file is written atomically through ``storage.sweepdir``: a write cut half-way
(a crash, a full disk, an exception in the writer) leaves the previous file whole and no
temporary file behind, for local paths and pyarrow-fs URIs (``file://`` here; object stores
publish an upload only when it completes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snnsearch.storage import sweepdir as _storage


def _crash(*args: object) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("uri", [False, True], ids=["local", "file-uri"])
def test_a_write_cut_half_way_leaves_the_old_file(tmp_path: Path, uri: bool) -> None:
    path = f"file://{tmp_path}/r.bin" if uri else str(tmp_path / "r.bin")
    _storage.write_bytes(path, b"old")
    with pytest.raises(OSError), _storage.atomic_output(path) as out:
        out.write(b"new, half")
        _crash()
    assert (tmp_path / "r.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.bin"]
    _storage.write_bytes(path, b"new")
    assert (tmp_path / "r.bin").read_bytes() == b"new"


def test_a_path_writer_cut_half_way_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "f.csv"
    _storage.write_path(str(target), lambda tmp: Path(tmp).write_text("a,b\n1,2\n"))

    def half(tmp: str) -> None:
        Path(tmp).write_text("a,b\n3,")
        _crash()

    with pytest.raises(OSError):
        _storage.write_path(str(target), half)
    assert target.read_text() == "a,b\n1,2\n" and [p.name for p in tmp_path.iterdir()] == ["f.csv"]


def test_history_sensitivity_and_split_files_survive_a_cut_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``history.parquet``, ``energy_sensitivity.csv`` and the split files were written in
    place before: a crash mid-write left a torn file (issue 19)."""
    import pandas as pd

    from snnsearch.depth.data.kitti import SplitItem, read_split, write_split
    from snnsearch.energy.models import get_model, model_names
    from snnsearch.energy.sensitivity import write_sensitivity
    from snnsearch.reporting.history import write_history

    history = write_history([{"trial_id": "a", "training_iteration": 1, "val_acc": 0.5}],
                            str(tmp_path))
    rows = [{"trial_id": "a", "status": "completed", "last/val_acc": 0.9, "config/T": 4,
             "last/synaptic_rate": 0.1}]
    for name in model_names():
        slug = get_model(name).slug
        rows[0].update({f"last/energy/{slug}_mj": 0.5, f"last/energy_ratio/{slug}": 0.2,
                        f"last/breakeven_rate/{slug}": 0.3})
    sens = write_sensitivity(rows, metric="val_acc", mode="max", sweep_dir=str(tmp_path))
    assert sens is not None
    split = write_split(tmp_path / "splits" / "train_files.txt",
                        [SplitItem("2011_09_26/d", 1, "l")])
    before = {p: p.read_bytes() for p in (Path(history), split, sens)}
    monkeypatch.setattr(os, "replace", _crash)
    with pytest.raises(OSError):
        write_history([{"trial_id": "b", "training_iteration": 1, "val_acc": 0.1}],
                      str(tmp_path))
    with pytest.raises(OSError):
        write_split(split, [SplitItem("2011_09_26/d", 2, "l")])
    with pytest.raises(OSError):
        write_sensitivity(rows, metric="val_acc", mode="max", sweep_dir=str(tmp_path))
    assert {p: p.read_bytes() for p in before} == before
    monkeypatch.undo()
    assert list(pd.read_parquet(history)["trial_id"]) == ["a"]
    assert [i.frame for i in read_split(split)] == [1]
    leftovers = [p.name for p in tmp_path.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []
