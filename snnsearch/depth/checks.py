"""KITTI raw checks for the driver's preflight: every file a depth trial will open.

Reuses the parsing helpers of :mod:`snnsearch.depth.data.kitti` (split files, paths, calibration) so
the check and the loader cannot disagree about the layout. Runs only for ``data: kitti``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

VELO_POINT_BYTES = 16  # x, y, z, reflectance as float32
CAM_TO_CAM_KEYS = ("P_rect_02", "S_rect_02", "R_rect_00")  # intrinsics and GT projection
VELO_TO_CAM_KEYS = ("R", "T")


def check_space_data(fixed: Mapping[str, Any], possible: Callable[[str], list[Any] | None]) -> None:
    """The preflight's check for a depth sweep (``Task.check_data``): KITTI's files when a trial
    can use ``data: kitti`` (generated scenes need none)."""
    if "kitti" in (possible("data") or ["synthetic"]):
        check_kitti(fixed)


def check_kitti(fixed: Mapping[str, Any]) -> None:
    """Raises a one-line ValueError for the first missing or malformed input of a KITTI sweep.

    Args:
        fixed: the trial config's fixed values (``data_dir``, ``train_split``, ``val_split``,
            ``gt_path``, ``max_train_items``, ``max_val_items``).
    """
    from snnsearch.depth.data import kitti as K

    root = Path(str(fixed.get("data_dir") or ""))
    if not str(fixed.get("data_dir") or ""):
        raise ValueError("data: kitti needs the KITTI raw root: pass --data-dir <folder with "
                         "<date>/<date>_drive_<id>_sync>")
    if not root.is_dir():
        raise ValueError(f"--data-dir {root} does not exist or is not a directory; pass the "
                         "KITTI raw root")
    # Relative split and GT paths are under --data-dir, as the loader reads them.
    from snnsearch.depth.splits import resolve

    gt_path = str(resolve(root, str(fixed["gt_path"]))) if fixed.get("gt_path") else ""
    train = _items(K, root, str(fixed.get("train_split") or "auto"),
                   int(fixed.get("max_train_items") or 0), "train_split")
    val = _items(K, root, str(fixed.get("val_split") or "auto"),
                 int(fixed.get("max_val_items") or 0), "val_split")
    frames: dict[tuple[str, str], dict[Path, None]] = {}
    for item in dict.fromkeys([*train, *val]):
        for offset in K.FRAME_IDS:
            path = K.image_path(root, item, item.frame + offset)
            if not path.is_file():
                raise ValueError(f"KITTI frame missing: {path} (needed by {item.folder} "
                                 f"{item.frame}); restore it or drop the frame from the split")
            frames.setdefault((item.folder, item.camera), {})[path] = None
    for (folder, camera), paths in frames.items():
        check_frame_sizes(folder, camera, sorted(paths))
    dates = sorted({i.date for i in [*train, *val]})
    for date in dates:
        _calib(K, root / date / "calib_cam_to_cam.txt", CAM_TO_CAM_KEYS)
    if gt_path:
        _check_gt_file(Path(gt_path), len(val))
        return
    for date in sorted({i.date for i in val}):
        _calib(K, root / date / "calib_velo_to_cam.txt", VELO_TO_CAM_KEYS)
    for item in val:
        check_scan(K.velodyne_path(root, item))


def check_frame_sizes(folder: str, camera: str, paths: list[Path]) -> None:
    """Every frame of one drive and camera has the same size.

    A frame of another size in the middle of a drive (a re-saved or re-exported file) used to be
    resized with the others and trained on silently, with intrinsics that no longer match it.
    Sizes come from the image headers (PIL opens lazily: nothing is decoded), so this costs
    about a millisecond a frame.
    """
    from PIL import Image, UnidentifiedImageError

    first: tuple[Path, tuple[int, int]] | None = None
    for path in paths:
        try:
            with Image.open(path) as image:
                size = image.size
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"KITTI frame {path} is not a readable image ({err}); re-copy it "
                             "from KITTI raw or drop the frame from the split") from None
        if first is None:
            first = (path, size)
        elif size != first[1]:
            raise ValueError(
                f"KITTI frame {path} is {size[0]}x{size[1]}, but {first[0].name} and the other "
                f"frames of {folder} image_{camera} are {first[1][0]}x{first[1][1]}; re-copy "
                "the original frame from KITTI raw or drop it from the split")


def _items(K: Any, root: Path, split: str, limit: int, key: str) -> list:
    if split in ("", "auto"):
        items = K.scan_frames(root)
        where = f"{root} (auto split: frames with both neighbours)"
    else:
        from snnsearch.depth.splits import resolve

        path = resolve(root, split)
        if not path.is_file():
            raise ValueError(f"{key} file not found: {path}; pass an existing split file "
                             "(relative paths are under --data-dir)")
        items = K.read_split(path)  # a malformed line raises naming file:line
        where = str(path)
    items = items[:limit] if limit > 0 else items
    if not items:
        raise ValueError(f"{key}: no frames in {where}; check --data-dir and the split")
    return items


def _calib(K: Any, path: Path, keys: tuple[str, ...]) -> None:
    if not path.is_file():
        raise ValueError(f"calibration file missing: {path}; copy the drive date's calib_*.txt "
                         "from KITTI raw")
    calib = K.read_calib_file(path)
    for key in keys:
        if key not in calib:
            raise ValueError(f"calibration file {path} has no {key} row; use the original "
                             "KITTI raw calibration file")


def check_scan(path: Path) -> None:
    """A velodyne scan exists and holds whole points (its length a multiple of 16 bytes)."""
    if not path.is_file():
        raise ValueError(f"velodyne scan missing: {path}; restore it or pass gt_path "
                         "(export_gt_depths)")
    size = path.stat().st_size
    if size == 0 or size % VELO_POINT_BYTES:
        raise ValueError(f"velodyne scan {path} is {size} bytes, not a whole number of "
                         f"{VELO_POINT_BYTES}-byte points (truncated?); re-copy it")


def _check_gt_file(path: Path, needed: int) -> None:
    """``gt_depths.npz`` is a zip of plain float arrays with at least ``needed`` maps (read
    from the array headers only: the Eigen GT is over 1 GB)."""
    fix = "re-export it with snnsearch.depth.data.gt.export_gt_depths"
    if not path.is_file():
        raise ValueError(f"gt_path not found: {path}; {fix} or leave gt_path empty to project "
                         "the velodyne scans")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n.removesuffix(".npy") for n in archive.namelist()]
            if "data" in names:
                shape, dtype = _header(archive, "data.npy")
                count = shape[0] if shape else 0
            else:
                keys = sorted(n for n in names if n.startswith("data_"))
                if not keys:
                    raise ValueError(f"{path} has no 'data' array; {fix}")
                dtype = _header(archive, keys[0] + ".npy")[1]
                count = len(keys)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path} is not a readable .npz ({err}); {fix}") from None
    if dtype.hasobject:
        raise ValueError(f"{path} holds pickled Python objects, which are never loaded (they "
                         f"can run code); {fix}")
    if count < needed:
        raise ValueError(f"{path} has {count} depth maps for {needed} validation frames; {fix} "
                         "for the val split")


def _header(archive: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(name) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    return shape, dtype
