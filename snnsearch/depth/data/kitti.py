"""KITTI raw monocular frames with monodepth2's conventions.

Layout: ``<root>/<date>/<date>_drive_<id>_sync/image_0{2,3}/data/<10 digits>.png`` with the
per-date calibration files ``<root>/<date>/calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt``.
Split files hold lines ``<date>/<drive folder> <frame> <side>`` (monodepth2's
``splits/*/*_files.txt``); the side picks the camera as monodepth2's ``side_map`` does: ``l`` →
image_02 with ``P_rect_02``, ``r`` → image_03 with ``P_rect_03``. Each item
is a triplet of frames ``[0, -1, +1]``, resized to ``height × width`` on the CPU; colour jitter and
flips run batched on the GPU (:class:`GpuAugment`, kornia.augmentation). Drives with a
``poses.txt`` (the synthetic scenes) can also yield their known camera motion per item.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from snnsearch.depth.data.batches import BatchBuffers, small

if TYPE_CHECKING:
    from snnsearch.depth.data.frame_cache import FrameCache

# monodepth2's side_map: the left/right colour cameras of KITTI's stereo rig.
SIDE_CAMERA = {"l": "02", "r": "03"}
FRAME_IDS = (0, -1, 1)
# Per-drive camera poses (KITTI odometry format: one 3×4 camera→first-frame row per frame). KITTI
# raw has none; the synthetic scenes write it, and ``known_pose`` datasets read it.
POSES_FILE = "poses.txt"


@dataclass(frozen=True)
class SplitItem:
    """One line of a split file: ``folder`` is ``<date>/<date>_drive_<id>_sync``."""

    folder: str
    frame: int
    side: str = "l"

    @property
    def date(self) -> str:
        return self.folder.split("/")[0]

    @property
    def camera(self) -> str:
        """KITTI camera id of this side ("02" or "03")."""
        return SIDE_CAMERA[self.side]


class DepthSample(NamedTuple):
    """One training item (a NamedTuple so the default collate batches it field by field).

    frames: ``[F, 3, H, W]`` uint8, in ``FRAME_IDS`` order (4× less to copy and pin than float;
        :func:`to_unit` makes them floats in [0, 1] on the device).
    K: ``[4, 4]`` intrinsics scaled to ``H × W`` pixels.
    idx: position in the dataset (``[B]`` in a batch), to look up GT and to tell which items a
        batch holds (batches come with their indices sorted, see ``SortedBatches``).
    poses: ``[F-1, 4, 4]`` known target→source transforms (source frames in ``FRAME_IDS[1:]``
        order), or None when the camera motion is not known (it is then predicted).
    """

    frames: torch.Tensor
    K: torch.Tensor
    idx: int | torch.Tensor
    poses: torch.Tensor | None = None


def read_split(path: str | Path) -> list[SplitItem]:
    """Parses a monodepth2 split file; a malformed line is an error naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    items = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in ("l", "r"):
            raise ValueError(f"{path}:{n}: expected '<date>/<drive> <frame> l', got {line!r}")
        items.append(SplitItem(parts[0], int(parts[1]), parts[2]))
    return items


def write_split(path: str | Path, items: Sequence[SplitItem]) -> Path:
    """Writes items in the monodepth2 split-file format."""
    from snnsearch.storage import sweepdir as _storage

    path = Path(path)
    # Atomic (temp file + rename): a crash never leaves half a split that trials then read.
    _storage.write_text(str(path), "".join(f"{i.folder} {i.frame} {i.side}\n" for i in items))
    return path


def image_path(root: str | Path, item: SplitItem, frame: int, ext: str = ".png") -> Path:
    """Frame ``frame`` of the camera of ``item``'s side (a neighbour shares the item's side)."""
    return Path(root) / item.folder / f"image_{item.camera}" / "data" / f"{frame:010d}{ext}"


def velodyne_path(root: str | Path, item: SplitItem) -> Path:
    return Path(root) / item.folder / "velodyne_points" / "data" / f"{item.frame:010d}.bin"


def scan_frames(
    root: str | Path, frame_ids: Sequence[int] = FRAME_IDS, sides: Sequence[str] = ("l",)
) -> list[SplitItem]:
    """Every frame under ``root`` whose neighbours ``frame_ids`` exist, per side in ``sides``
    (the camera folder of a side must exist; a drive without image_03 yields no ``r`` items)."""
    unknown = [s for s in sides if s not in SIDE_CAMERA]
    if unknown:
        raise ValueError(f"unknown side {unknown[0]!r}; use l (image_02) or r (image_03)")
    items = []
    for drive in sorted(Path(root).glob("*/*_drive_*_sync")):
        folder = f"{drive.parent.name}/{drive.name}"
        for side in sides:
            data = drive / f"image_{SIDE_CAMERA[side]}" / "data"
            frames = {int(p.stem) for p in data.glob("*.png")}
            items += [
                SplitItem(folder, f, side)
                for f in sorted(frames)
                if all(f + k in frames for k in frame_ids)
            ]
    return items


def read_calib_file(path: str | Path) -> dict[str, np.ndarray]:
    """Reads a KITTI ``key: v1 v2 ...`` calibration file (non-numeric values are skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration file not found: {path}")
    data: dict[str, np.ndarray] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        try:
            data[key.strip()] = np.array([float(v) for v in value.split()])
        except ValueError:
            continue  # calib_time is a date string
    return data


def calib_value(calib: dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    if key not in calib:
        raise ValueError(f"calibration file {path} has no {key!r} entry")
    return calib[key]


def normalized_intrinsics(root: str | Path, date: str, camera: str = "02") -> np.ndarray:
    """4×4 K of ``image_<camera>`` (from ``P_rect_<camera>``) with fx, cx divided by the image
    width and fy, cy by its height.

    Why normalised: one K serves every resize (monodepth2 multiplies by the working size).
    """
    path = Path(root) / date / "calib_cam_to_cam.txt"
    calib = read_calib_file(path)
    P = calib_value(calib, f"P_rect_{camera}", path).reshape(3, 4)
    w, h = calib_value(calib, f"S_rect_{camera}", path)
    K = np.eye(4, dtype=np.float32)
    K[0, :3] = P[0, :3] / w
    K[1, :3] = P[1, :3] / h
    return K


def read_poses(root: str | Path, folder: str) -> np.ndarray:
    """``[N, 4, 4]`` camera→first-frame poses of a drive from its ``poses.txt``.

    A missing file is an error naming it: ``pose=known`` needs the camera motion, which KITTI raw
    does not ship (use ``pose=net`` there, or provide the file in the odometry format).
    """
    path = Path(root) / folder / POSES_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"pose=known needs {path} (one 3x4 camera pose per frame, KITTI odometry format); "
            "use pose=net for drives without known motion"
        )
    rows = np.loadtxt(path, ndmin=2)
    if rows.shape[1] != 12:
        raise ValueError(f"{path}: expected 12 numbers per line (a 3x4 pose), got {rows.shape[1]}")
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3, :] = rows.reshape(-1, 3, 4)
    return poses


def target_to_source(poses: np.ndarray, frame: int, frame_ids: Sequence[int]) -> torch.Tensor:
    """``[F-1, 4, 4]`` transforms mapping frame ``frame``'s camera points into each source camera
    (``inv(P_source) @ P_target``), the convention of the warp and of the pose network."""
    if frame + max(frame_ids) >= len(poses) or frame + min(frame_ids) < 0:
        raise ValueError(f"poses file has {len(poses)} rows; frame {frame} needs its neighbours")
    target = poses[frame]
    out = [np.linalg.inv(poses[frame + k]) @ target for k in frame_ids[1:]]
    return torch.as_tensor(np.stack(out), dtype=torch.float32)


def scaled_intrinsics(K_norm: np.ndarray | torch.Tensor, height: int, width: int) -> torch.Tensor:
    K = torch.as_tensor(np.asarray(K_norm), dtype=torch.float32).clone()
    K[0, :] *= width
    K[1, :] *= height
    K[0, 3] = K[1, 3] = 0.0
    return K


def load_image(path: Path, height: int, width: int) -> torch.Tensor:
    """``[3, H, W]`` uint8 image; LANCZOS like monodepth2's ``transforms.Resize(ANTIALIAS)``."""
    from snnsearch.depth.data.frame_cache import decode

    return torch.from_numpy(decode(str(path), height, width)).permute(2, 0, 1).contiguous()


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames → float in [0, 1] (float input passes through)."""
    return frames.float().div_(255.0) if frames.dtype == torch.uint8 else frames


def frame_paths(
    root: str | Path, items: Sequence[SplitItem], frame_ids: Sequence[int] = FRAME_IDS,
    ext: str = ".png",
) -> list[Path]:
    """Every image file the items read (targets and neighbours, each once)."""
    return sorted({image_path(root, i, i.frame + k, ext) for i in items for k in frame_ids})


class KittiRawDataset(Dataset):
    """Frame triplets and intrinsics for self-supervised training and Eigen evaluation.

    Args:
        root: KITTI raw root (holds ``<date>/`` folders).
        items: split items (see :func:`read_split` / :func:`scan_frames`).
        height: working height (monodepth2: 192).
        width: working width (monodepth2: 640).
        frame_ids: temporal offsets loaded per item; 0 first.
        ext: image extension (monodepth2 often converts to .jpg; raw KITTI is .png).
        known_pose: also return the drives' known camera motion (``poses.txt``, see
            :func:`read_poses`), so training can skip the pose network.
        cache: a :class:`~snnsearch.depth.data.frame_cache.FrameCache` at this resolution holding the
            items' frames (None: decode the PNGs on every access).
    """

    def __init__(
        self,
        root: str | Path,
        items: Sequence[SplitItem],
        *,
        height: int = 192,
        width: int = 640,
        frame_ids: Sequence[int] = FRAME_IDS,
        ext: str = ".png",
        known_pose: bool = False,
        cache: FrameCache | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"KITTI root not found: {self.root}")
        if height % 32 or width % 32:
            raise ValueError(f"height and width must be multiples of 32 (got {height}×{width})")
        if not items:
            raise ValueError(f"empty split for KITTI root {self.root}")
        self.items = list(items)
        self.height, self.width = height, width
        self.frame_ids = tuple(frame_ids)
        self.ext = ext
        if cache is not None and (cache.height, cache.width) != (height, width):
            raise ValueError(f"frame cache is {cache.height}×{cache.width}, not {height}×{width}")
        self.cache = cache
        self._K = {
            (d, c): normalized_intrinsics(self.root, d, c)
            for d, c in {(i.date, i.camera) for i in self.items}
        }
        folders = sorted({i.folder for i in self.items})
        self._poses = {f: read_poses(self.root, f) for f in folders} if known_pose else None
        # Cache rows of every item's frames ([N, F], FRAME_IDS order), looked up once: a batch is
        # then one gather of these rows, and a frame missing from the cache fails here.
        self._rows = None if cache is None else np.array(
            [[cache.row(image_path(self.root, i, i.frame + k, ext)) for k in self.frame_ids]
             for i in self.items], dtype=np.int64,
        )
        self.pin_batches = False  # set by the trainer when batches go to CUDA from this process
        self.buffers = BatchBuffers()
        self._table: tuple[np.ndarray, np.ndarray | None] | None = None  # built on first batch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> DepthSample:
        item = self.items[index]
        paths = [image_path(self.root, item, item.frame + k, self.ext) for k in self.frame_ids]
        if self.cache is not None:
            frames = torch.from_numpy(np.stack([self.cache.frame(p) for p in paths]))
        else:
            frames = torch.stack([load_image(p, self.height, self.width) for p in paths])
        return DepthSample(frames, self._intrinsics(item), index, self._item_poses(item))

    def _intrinsics(self, item: SplitItem) -> torch.Tensor:
        return scaled_intrinsics(self._K[item.date, item.camera], self.height, self.width)

    def _item_poses(self, item: SplitItem) -> torch.Tensor | None:
        if self._poses is None:
            return None
        return target_to_source(self._poses[item.folder], item.frame, self.frame_ids)

    def __getitems__(self, indices: Sequence[int]) -> DepthSample:
        """A whole batch, items in the order of ``indices`` (the DataLoader calls this instead
        of ``__getitem__`` per item when it batches; pass its result through with
        :func:`~snnsearch.depth.data.batches.pass_batch`).

        With the cache the frames are one indexed read of its memory map, straight into a
        preallocated buffer (:class:`~snnsearch.depth.data.batches.BatchBuffers`); K, indices and
        poses come from tables built once. Without the cache the PNG path's items are stacked
        (the same pixels, ≈ 60 ms per item).
        """
        index = np.asarray(indices, dtype=np.int64)
        if self._table is None:
            self._table = self._item_tables()
        K, poses = self._table
        if self._rows is None or self.cache is None:
            frames = torch.stack([self[int(i)].frames for i in index])
            return DepthSample(frames, torch.from_numpy(K[index]), torch.from_numpy(index),
                               None if poses is None else torch.from_numpy(poses[index]))
        from torch.utils.data import get_worker_info

        f, h, w = len(self.frame_ids), self.height, self.width
        shape = (len(index), f, 3, h, w)
        if get_worker_info() is not None:  # the ring slot travels as a key after its first use
            frames, sent = self.buffers.worker_frames(shape)
        else:
            frames = sent = self.buffers.frames(shape, pin=self.pin_batches)
        self.cache.gather(self._rows[index].reshape(-1), frames.numpy().reshape(-1, 3, h, w))
        return DepthSample(sent, small(K[index]), small(index),
                           None if poses is None else small(poses[index]))

    def _item_tables(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Every item's K (``[N, 4, 4]``) and known poses (``[N, F-1, 4, 4]`` or None)."""
        K = np.stack([self._intrinsics(i).numpy() for i in self.items])
        if self._poses is None:
            return K, None
        return K, np.stack([self._item_poses(i).numpy() for i in self.items])  # type: ignore


class GpuAugment(nn.Module):
    """monodepth2's augmentation, batched on the device: colour jitter (p=0.5; brightness,
    contrast, saturation ±0.2, hue ±0.1 as torchvision's ``ColorJitter``) on the network input and
    a horizontal flip (p=0.5) of the whole triplet.

    The same jitter parameters are applied to every frame of an item; the loss uses the un-jittered
    (but flipped) frames, as in monodepth2. K is left unchanged on flips (cx ≈ W/2 on KITTI, the
    approximation monodepth2 makes as well). Known poses of flipped items are mirrored too
    (``F T F`` with ``F = diag(-1, 1, 1, 1)``): the flipped frames show the x-mirrored world.

    Why not ``kornia.augmentation.ColorJiggle``: it validates its ranges and reads the sampled
    order back to the host on every call (≈ 20 device syncs per batch). Here every parameter is
    sampled on the device and applied with tensor ops (kornia's ``adjust_hue`` for the hue
    rotation), in the fixed order brightness → contrast → saturation → hue.
    """

    def __init__(self, *, brightness: float = 0.2, contrast: float = 0.2,
                 saturation: float = 0.2, hue: float = 0.1, p: float = 0.5) -> None:
        super().__init__()
        self.ranges = (brightness, contrast, saturation, hue)
        self.p = p

    def jitter(self, frames: torch.Tensor) -> torch.Tensor:
        """Same random jitter for all frames of an item: ``[B, F, 3, H, W]`` in [0, 1]."""
        from kornia.enhance import adjust_hue  # heavy import kept local

        b = frames.shape[0]
        u = torch.rand(5, b, device=frames.device, dtype=frames.dtype)
        bri, con, sat, hue = (
            1 + r * (2 * u[i] - 1) if i < 3 else r * (2 * u[i] - 1)
            for i, r in enumerate(self.ranges)
        )
        shape = (b, 1, 1, 1, 1)
        x = (frames * bri.view(shape)).clamp(0, 1)
        gray = (0.299 * x[:, :, 0:1] + 0.587 * x[:, :, 1:2] + 0.114 * x[:, :, 2:3])
        mean = gray.mean(dim=(1, 2, 3, 4), keepdim=True)
        x = (con.view(shape) * x + (1 - con.view(shape)) * mean).clamp(0, 1)
        gray = (0.299 * x[:, :, 0:1] + 0.587 * x[:, :, 1:2] + 0.114 * x[:, :, 2:3])
        x = (sat.view(shape) * x + (1 - sat.view(shape)) * gray).clamp(0, 1)
        flat = x.flatten(0, 1)
        angle = (2 * torch.pi * hue).repeat_interleave(frames.shape[1])
        x = adjust_hue(flat, angle).view_as(x).clamp(0, 1)
        apply = (u[4] < self.p).view(shape)
        return torch.where(apply, x, frames)

    def forward(
        self, frames: torch.Tensor, poses: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """frames ``[B, F, 3, H, W]`` (and known poses ``[B, F-1, 4, 4]`` or None) →
        (jittered network input, flipped loss targets, flipped poses or None)."""
        b = frames.shape[0]
        flip = torch.rand(b, device=frames.device) < 0.5
        frames = torch.where(flip[:, None, None, None, None], frames.flip(-1), frames)
        if poses is not None:
            mirror = torch.diag(poses.new_tensor([-1.0, 1.0, 1.0, 1.0]))
            poses = torch.where(flip[:, None, None, None], mirror @ poses @ mirror, poses)
        return self.jitter(frames), frames, poses


_DRIVE = re.compile(r"^\d{4}_\d{2}_\d{2}/\d{4}_\d{2}_\d{2}_drive_\d{4}_sync$")


def check_layout(root: str | Path, items: Sequence[SplitItem]) -> None:
    """Warns early (one error) when a split's folders do not look like KITTI raw drives."""
    bad = [i.folder for i in items if not _DRIVE.match(i.folder)]
    if bad:
        raise ValueError(
            f"split folder {bad[0]!r} under {root} is not '<date>/<date>_drive_<id>_sync'"
        )
