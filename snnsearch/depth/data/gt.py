"""Ground-truth depth from velodyne scans, projected into the camera of the item's side
(image_02 for ``l``, image_03 for ``r``; monodepth2's ``kitti_utils.generate_depth_map`` protocol;
own implementation).

P_velo→im = P_rect_0c · R_rect_00 · [R|T]_velo→cam. Points behind the scanner (x < 0) are dropped;
image coordinates are rounded and shifted by −1 (the KITTI devkit's MATLAB 1-based convention that
monodepth2 and the published Eigen numbers keep); of several points on one pixel the nearest wins.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from snnsearch.depth.data.kitti import SplitItem, calib_value, read_calib_file, velodyne_path


def velo_to_image_matrix(
    calib_dir: str | Path, cam: int = 2
) -> tuple[np.ndarray, tuple[int, int]]:
    """3×4 velodyne→image_0{cam} projection and the rectified image size (H, W).

    ``P_rect_03`` carries the stereo baseline in its last column, so a point at depth z lands
    fx·b/z pixels further left in image_03 than in image_02.
    """
    calib_dir = Path(calib_dir)
    c2c_path, v2c_path = calib_dir / "calib_cam_to_cam.txt", calib_dir / "calib_velo_to_cam.txt"
    cam2cam, velo2cam = read_calib_file(c2c_path), read_calib_file(v2c_path)
    Rt = np.eye(4)
    Rt[:3, :3] = calib_value(velo2cam, "R", v2c_path).reshape(3, 3)
    Rt[:3, 3] = calib_value(velo2cam, "T", v2c_path)
    R_rect = np.eye(4)
    R_rect[:3, :3] = calib_value(cam2cam, "R_rect_00", c2c_path).reshape(3, 3)
    P = calib_value(cam2cam, f"P_rect_0{cam}", c2c_path).reshape(3, 4)
    w, h = calib_value(cam2cam, f"S_rect_0{cam}", c2c_path).astype(int)
    return P @ R_rect @ Rt, (int(h), int(w))


def load_velodyne(path: str | Path) -> np.ndarray:
    """``[N, 4]`` float32 (x, y, z, reflectance)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"velodyne scan not found: {path}")
    size = path.stat().st_size
    if size % 16:  # 4 float32 per point; np.fromfile would drop or misalign the tail silently
        raise ValueError(f"velodyne scan {path} is {size} bytes, not a whole number of 16-byte "
                         "points (truncated?); re-copy it")
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def project_points(
    points: np.ndarray, P_velo2im: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Sparse ``[H, W]`` depth map (0 = no point) from velodyne points."""
    h, w = shape
    pts = points[points[:, 0] >= 0].astype(np.float64)
    pts[:, 3] = 1.0
    im = pts @ P_velo2im.T
    depth = im[:, 2]
    keep = depth > 0
    im, depth = im[keep], depth[keep]
    u = np.round(im[:, 0] / depth).astype(np.int64) - 1
    v = np.round(im[:, 1] / depth).astype(np.int64) - 1
    inside = (u >= 0) & (v >= 0) & (u < w) & (v < h)
    u, v, depth = u[inside], v[inside], depth[inside]
    # Nearest point per pixel: write far-to-near so the nearest overwrites the rest.
    order = np.argsort(-depth)
    out = np.zeros((h, w), dtype=np.float32)
    out[v[order], u[order]] = depth[order]
    return out


def depth_map(root: str | Path, item: SplitItem) -> np.ndarray:
    """GT depth of one split item at the full rectified image size, in its side's camera."""
    P, shape = velo_to_image_matrix(Path(root) / item.date, cam=int(item.camera))
    return project_points(load_velodyne(velodyne_path(root, item)), P, shape)


IDS = "frame_ids"  # the key of the GT file's frame ids ("<folder> <frame> <side>", one per map)
REGENERATE = ("regenerate it: python -m snnsearch.depth.splits (writes val_gt_depths.npz) or "
              "snnsearch.depth.data.gt.export_gt_depths(root, items, path)")


def frame_id(item: SplitItem) -> str:
    """A split item as a GT file names it: its split-file line, ``<folder> <frame> <side>``."""
    return f"{item.folder} {item.frame} {item.side}"


def _load(path: Path) -> tuple[list[np.ndarray], list[str] | None]:
    if not path.is_file():
        raise FileNotFoundError(
            f"GT depth file not found: {path} (export it with export_gt_depths)"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            ids = [str(i) for i in f[IDS]] if IDS in f.files else None
            if "data" in f:
                return [np.asarray(d, dtype=np.float32) for d in f["data"]], ids
            keys = sorted(k for k in f.files if k.startswith("data_"))
            if not keys:
                raise ValueError(
                    f"{path} has no 'data' array (expected gt_depths.npz from export_gt_depths)"
                )
            return [np.asarray(f[k], dtype=np.float32) for k in keys], ids
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise
        raise ValueError(
            f"{path} holds pickled Python objects, which are never loaded (they can run code); "
            "re-export it with snnsearch.depth.data.gt.export_gt_depths"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable .npz ({err}); re-export it") from None


def load_gt_depths(path: str | Path) -> list[np.ndarray]:
    """Reads a ``gt_depths.npz``: a stacked ``data`` array, or ``data_00000``, ``data_00001``, ...
    when the maps differ in size (and ``frame_ids``, see :func:`load_gt_for`), in file order.

    Never with ``allow_pickle``: an object array in an ``.npz`` is a pickle and runs code when
    loaded. monodepth2's own ragged export is such an object array; it is refused with the fix.
    """
    return _load(Path(path))[0]


def load_gt_for(path: str | Path, items: Sequence[SplitItem]) -> list[np.ndarray]:
    """The GT maps of ``items``, in their order, from a file that names its frames.

    Why ids: a GT file of another split with at least as many maps would otherwise be accepted
    and scored against the wrong depth maps. The file may hold more frames than ``items`` (the
    full split when a run takes the first N val items); a frame it lacks is an error naming the
    file and the first such frame, and a file without ids (written before ids existed) is refused
    with how to regenerate it.
    """
    path = Path(path)
    maps, ids = _load(path)
    if ids is None:
        raise ValueError(f"GT file {path} does not name its frames (written by an older "
                         f"snnsearch); {REGENERATE}")
    if len(ids) != len(maps):
        raise ValueError(f"GT file {path} names {len(ids)} frames for {len(maps)} maps; "
                         f"{REGENERATE}")
    where = {frame: n for n, frame in enumerate(ids)}
    for n, item in enumerate(items):
        if frame_id(item) not in where:
            held = f"its entry {n} is {ids[n]!r}" if n < len(ids) else f"it has {len(ids)}"
            raise ValueError(f"GT file {path} does not match the split: item {n} "
                             f"{frame_id(item)!r} is not in it ({held}); {REGENERATE}")
    return [maps[where[frame_id(i)]] for i in items]


def save_gt_depths(
    path: str | Path, depths: Sequence[np.ndarray], *, items: Sequence[SplitItem]
) -> Path:
    """Writes maps as ``data`` (stacked) or, if their shapes differ, one ``data_<i>`` array each
    (no object arrays: those can only be read back with pickle), with ``frame_ids`` naming the
    item of each map (a fixed-width unicode array, no pickle either)."""
    if len(items) != len(depths):
        raise ValueError(f"{len(depths)} GT maps for {len(items)} items")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    maps = [np.asarray(d, dtype=np.float32) for d in depths]
    ids = np.array([frame_id(i) for i in items], dtype=str)
    if len({d.shape for d in maps}) == 1:
        np.savez_compressed(path, data=np.stack(maps), **{IDS: ids})
    else:
        np.savez_compressed(path, **{f"data_{i:05d}": d for i, d in enumerate(maps)}, **{IDS: ids})
    return path


def export_gt_depths(root: str | Path, items: Sequence[SplitItem], out_path: str | Path) -> Path:
    """Projects every item's scan and saves the split's GT, with its frame ids, as
    ``gt_depths.npz``."""
    return save_gt_depths(out_path, [depth_map(root, i) for i in items], items=items)
