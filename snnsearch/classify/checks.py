"""Classification dataset checks the driver runs before Ray starts (``Task.check_data`` of the
classify task): every file a trial will open, checked once.

Found by the trials, a bad dataset costs a Ray start and one traceback per trial ("N errored"
and no reason); found here it is one line naming the file and the fix. Each check takes the
values the trials will get (``fixed`` after ``--smoke``/CLI overrides) and the values a searched
parameter can take, and raises ``ValueError`` with one line.

- MNIST / FashionMNIST: ``<root>/<MNIST|FashionMNIST>/raw`` holds the four official ``.gz`` files
  (md5 as in torchvision's ``resources`` lists; a file of the other dataset is named as such),
  or the four extracted IDX files of the right size.

KITTI raw is checked by the depth task's own ``snnsearch.depth.checks``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

# torchvision.datasets.{MNIST,FashionMNIST}.resources (copied so the check needs no torch import;
# tests/sweep_tests/test_preflight_checks.py asserts they still match torchvision's lists).
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
FOLDER = {"mnist": "MNIST", "fashion": "FashionMNIST"}  # torchvision's class names
# Extracted IDX sizes: 16-byte header + 28x28 per image; 8-byte header + 1 per label.
IDX_SIZES = {
    "train-images-idx3-ubyte": 16 + 60000 * 784, "train-labels-idx1-ubyte": 8 + 60000,
    "t10k-images-idx3-ubyte": 16 + 10000 * 784, "t10k-labels-idx1-ubyte": 8 + 10000,
}
_KNOWN = {md5: (name, file) for name, files in MD5.items() for file, md5 in files.items()}


def check_space_data(fixed: Mapping[str, Any], possible: Callable[[str], list[Any] | None]) -> None:
    """The preflight's check for a classification sweep (``Task.check_data``): the raw files of
    every dataset a trial can use, under ``data_dir`` or the default root."""
    datasets = possible("dataset") or ["mnist"]
    # = snnsearch.classify.data.default_data_root (not imported: it imports torch)
    root = fixed.get("data_dir")
    default = os.environ.get("SNNSEARCH_DATA") or Path.home() / ".cache/snnsearch/data"
    check_classification([str(d) for d in datasets], Path(str(root or default)))


def check_classification(datasets: Iterable[str], root: Path) -> None:
    """The raw files of each dataset under ``root`` are present and intact."""
    for name in datasets:
        if name in MD5:
            _check_raw(name, root / FOLDER[name] / "raw")


def _check_raw(name: str, raw: Path) -> None:
    gz_files = MD5[name]
    extracted = [raw / f.removesuffix(".gz") for f in gz_files]
    fix = (f"put the official {', '.join(gz_files)} into {raw} (torchvision.datasets."
           f"{FOLDER[name]}(root, download=True) fetches them) or pass --data-dir")
    if all(p.is_file() for p in extracted):  # torchvision then ignores the .gz files
        for path in extracted:
            size, want = path.stat().st_size, IDX_SIZES[path.name]
            if size != want:
                raise ValueError(f"{path} is corrupted ({size} bytes, expected {want}); delete it "
                                 f"and {fix}")
        return
    for file, want in gz_files.items():
        path = raw / file
        if not path.is_file():
            raise ValueError(f"{FOLDER[name]} file missing: {path}; {fix}")
        got = _md5(path)
        if got == want:
            continue
        other = _KNOWN.get(got)
        if other and other[0] != name:
            raise ValueError(f"{path} is the {FOLDER[other[0]]} file {other[1]}, not "
                             f"{FOLDER[name]}'s; {fix}")
        raise ValueError(f"{path} is corrupted or truncated (md5 {got}, expected {want}); {fix}")


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
