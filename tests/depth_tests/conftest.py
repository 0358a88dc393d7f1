"""Depth tests run torch single-threaded: on a shared 2-core runner, intra-op threads spin against
other processes and a depth train step was measured 10× slower with 2 threads than with 1.

``kitti_stereo_root`` is the real KITTI sample re-linked as two drives with both cameras: the
sample ships image_02 only, so image_03 holds mirrored copies of its frames (a right image that
can be told apart from the left one; geometry tests use the real P_rect_03 and velodyne scans).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

DATE = "2011_09_26"
SAMPLE_DRIVE = f"{DATE}/{DATE}_drive_0000_sync"
STEREO_DRIVES = (f"{DATE}/{DATE}_drive_0000_sync", f"{DATE}/{DATE}_drive_0001_sync")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def kitti_sample(shared_data: Path) -> Path:
    root = shared_data / "kitti_raw_sample"
    if not root.is_dir():
        pytest.skip("KITTI sample not present")
    return root


@pytest.fixture(scope="session")
def kitti_stereo_root(kitti_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two drives (both links to the sample's frames and scans) with image_02 and image_03."""
    from PIL import Image

    base = tmp_path_factory.mktemp("kitti_stereo")
    right = base / "image_03" / "data"
    right.mkdir(parents=True)
    for png in sorted((kitti_sample / SAMPLE_DRIVE / "image_02" / "data").glob("*.png")):
        with Image.open(png) as img:
            img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(right / png.name, compress_level=1)
    root = base / "kitti"
    (root / DATE).mkdir(parents=True)
    for calib in (kitti_sample / DATE).glob("calib_*.txt"):
        (root / DATE / calib.name).symlink_to(calib)
    for drive in STEREO_DRIVES:
        (root / drive).mkdir()
        for sub in ("image_02", "velodyne_points"):
            (root / drive / sub).symlink_to(kitti_sample / SAMPLE_DRIVE / sub)
        (root / drive / "image_03").symlink_to(base / "image_03")
    return root
