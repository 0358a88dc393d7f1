"""Offline synthetic driving scenes written in the KITTI raw layout, so the whole depth pipeline
(loader, velodyne GT projection, training, Eigen evaluation) runs without the real dataset.

Each scene is a corridor: a ground plane 1.65 m below the camera (KITTI's camera height), two side
walls, a back wall and a few boxes standing on the ground, all covered by a solid 3-D value-noise
texture (so the photometric loss has gradients everywhere and brightness is constant across
frames). The camera moves forward along +z with a per-scene speed; frames are ray-cast exactly, the
rendered z-depth is the ground truth, and the camera poses are written per drive (``poses.txt``)
so training can use the known motion (``pose=known``). Why a hand-written ray caster: the scenes
need exact dense depth and nothing else, which a few vectorised ray–plane/box intersections give
without a renderer dependency.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from snnsearch import cache as user_cache
from snnsearch.depth.data.gt import save_gt_depths
from snnsearch.depth.data.kitti import POSES_FILE, SplitItem, write_split

DATE = "2000_01_01"  # not a KITTI date, so synthetic folders cannot be mistaken for real drives
CAMERA_HEIGHT = 1.65
# Velodyne → camera rotation of KITTI (x forward, y left, z up → x right, y down, z forward).
R_VELO_TO_CAM = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
_MARKER = "synthetic.json"


@dataclass(frozen=True)
class SyntheticSpec:
    """Generator parameters (stored in ``synthetic.json``; a root is reused only if they match)."""

    num_scenes: int = 4
    frames_per_scene: int = 12
    val_scenes: int = 1
    height: int = 96
    width: int = 320
    seed: int = 0
    # Bumped whenever the written layout changes, so cached folders of an older layout (which lack
    # e.g. ``poses.txt``) are never reused: the version is part of the cache key and the marker.
    layout_version: int = 3  # 3: the GT file carries its frame ids


@dataclass(frozen=True)
class SyntheticDataset:
    """Paths of a generated dataset."""

    root: Path
    train_split: Path
    val_split: Path
    gt_path: Path


def _intrinsics(h: int, w: int) -> np.ndarray:
    """KITTI-like pixel K (normalised fx 0.58, fy 1.92, centred principal point)."""
    return np.array([[0.58 * w, 0, 0.5 * w], [0, 1.92 * h, 0.5 * h], [0, 0, 1.0]])


def _value_noise(points: np.ndarray, table: np.ndarray, cell: float) -> np.ndarray:
    """Trilinear value noise in [0, 1] at world points ``[N, 3]`` (periodic random lattice)."""
    n = table.shape[0]
    p = points / cell
    base = np.floor(p).astype(np.int64)
    f = p - base
    f = f * f * (3 - 2 * f)  # smoothstep: no visible lattice creases
    out = np.zeros(len(points))
    for corner in np.ndindex(2, 2, 2):
        idx = (base + np.array(corner)) % n
        weight = np.prod(np.where(np.array(corner) == 1, f, 1 - f), axis=1)
        out += weight * table[idx[:, 0], idx[:, 1], idx[:, 2]]
    return out


class _Scene:
    """Random corridor geometry and texture for one drive."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.left, self.right = rng.uniform(3.0, 9.0, size=2)
        self.speed = rng.uniform(0.6, 1.2)
        self.end = rng.uniform(60.0, 72.0)  # back wall, z-distance from the first frame
        n_boxes = int(rng.integers(3, 7))
        side = rng.choice([-1.0, 1.0], size=n_boxes)
        lo = np.stack(
            [
                side * rng.uniform(1.5, 3.0, n_boxes),
                np.zeros(n_boxes),
                rng.uniform(12.0, 50.0, n_boxes),
            ],
            axis=1,
        )
        size = rng.uniform([0.8, 0.8, 1.0], [2.5, 2.5, 4.0], size=(n_boxes, 3))
        # Boxes stand on the ground (y = CAMERA_HEIGHT, y down) and extend away from the centre.
        x0 = np.where(side > 0, lo[:, 0], lo[:, 0] - size[:, 0])
        self.box_min = np.stack([x0, CAMERA_HEIGHT - size[:, 1], lo[:, 2]], axis=1)
        self.box_max = np.stack(
            [x0 + size[:, 0], np.full(n_boxes, CAMERA_HEIGHT), lo[:, 2] + size[:, 2]], axis=1
        )
        # Surface tints: ground, left, right, back, then one per box.
        self.tints = rng.uniform(0.25, 1.0, size=(4 + n_boxes, 3))
        self.tables = [rng.random((32, 32, 32)) for _ in range(3)]

    def render(
        self, cam_z: float, K: np.ndarray, h: int, w: int, supersample: int = 2
    ) -> tuple[np.ndarray, np.ndarray]:
        """(RGB uint8 ``[h, w, 3]``, z-depth ``[h, w]``) seen from ``(0, 0, cam_z)``.

        Each pixel averages ``supersample²`` rays: point-sampled texture aliases at a distance and
        then changes appearance from frame to frame, which breaks the photometric loss (measured:
        the true-depth warp error drops from 0.13 to 0.07 with 2×2 rays at 64×192).
        """
        s = supersample
        offsets = (np.arange(s) + 0.5) / s - 0.5
        v, u = np.mgrid[0:h, 0:w].astype(np.float64)
        v = (v[:, None, :, None] + offsets[None, :, None, None]).repeat(s, axis=3)
        u = (u[:, None, :, None] + offsets[None, None, None, :]).repeat(s, axis=1)
        # Ray with unit z component: the ray parameter is the z-depth itself.
        d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
        rgb, depth = self._shade(d.reshape(-1, 3), cam_z)
        rgb = rgb.reshape(h, s, w, s, 3).mean(axis=(1, 3))
        # GT: the pixel-centre ray for odd s; for even s no sub-ray hits the centre, so the mean.
        depth = depth.reshape(h, s, w, s)
        centre = depth.mean(axis=(1, 3)) if s % 2 == 0 else depth[:, s // 2, :, s // 2]
        img = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
        return img, centre.astype(np.float32)

    def _intersect(self, d: np.ndarray, cam_z: float) -> tuple[np.ndarray, np.ndarray]:
        """Nearest surface index and ray parameter (= z-depth) for rays ``d`` ``[N, 3]``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            cands = [
                np.where(d[:, 1] > 0, CAMERA_HEIGHT / d[:, 1], np.inf),
                np.where(d[:, 0] < 0, -self.left / d[:, 0], np.inf),
                np.where(d[:, 0] > 0, self.right / d[:, 0], np.inf),
                np.full(len(d), self.end - cam_z),
            ]
            origin = np.array([0.0, 0.0, cam_z])
            for bmin, bmax in zip(self.box_min, self.box_max):
                t0, t1 = (bmin - origin) / d, (bmax - origin) / d
                near = np.nanmax(np.minimum(t0, t1), axis=1)
                far = np.nanmin(np.maximum(t0, t1), axis=1)
                cands.append(np.where((near <= far) & (near > 0), near, np.inf))
        cands_arr = np.stack(cands, axis=1)
        surface = np.argmin(cands_arr, axis=1)
        return surface, cands_arr[np.arange(len(d)), surface]

    def _shade(self, d: np.ndarray, cam_z: float) -> tuple[np.ndarray, np.ndarray]:
        surface, depth = self._intersect(d, cam_z)
        world = np.array([0.0, 0.0, cam_z]) + d * depth[:, None]
        tex = np.zeros(len(d))
        for k, (table, cell) in enumerate(zip(self.tables, (0.25, 1.0, 4.0))):
            tex += 0.5**k * _value_noise(world + 7.3 * k, table, cell)
        rgb = self.tints[surface] * (0.35 + 0.65 * tex[:, None] / 1.75)
        return rgb, depth


def _write_calib(date_dir: Path, K: np.ndarray, h: int, w: int) -> None:
    P = np.hstack([K, np.zeros((3, 1))])

    def fmt(a: np.ndarray | list[float]) -> str:
        return " ".join(f"{x:.6e}" for x in np.ravel(a))

    (date_dir / "calib_cam_to_cam.txt").write_text(
        "calib_time: synthetic\n"
        f"S_rect_02: {fmt([w, h])}\nR_rect_00: {fmt(np.eye(3))}\nP_rect_02: {fmt(P)}\n"
    )
    (date_dir / "calib_velo_to_cam.txt").write_text(
        f"calib_time: synthetic\nR: {fmt(R_VELO_TO_CAM)}\nT: {fmt(np.zeros(3))}\n"
    )


def _write_poses(path: Path, cam_z: Sequence[float]) -> None:
    """KITTI odometry-style poses: per frame one line of the 3×4 ``[R | t]`` mapping that frame's
    camera coordinates into the first frame's (pure forward translation here)."""
    rows = []
    for z in cam_z:
        pose = np.hstack([np.eye(3), np.array([[0.0], [0.0], [z]])])
        rows.append(" ".join(f"{x:.6e}" for x in pose.ravel()))
    path.write_text("\n".join(rows) + "\n")


def _write_velodyne(path: Path, depth: np.ndarray, K: np.ndarray, stride: int = 2) -> None:
    """A velodyne-style scan: every ``stride``-th pixel back-projected, in the velodyne frame."""
    v, u = np.mgrid[0 : depth.shape[0] : stride, 0 : depth.shape[1] : stride]
    z = depth[v, u]
    keep = z < 80.0
    cam = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1)[keep]
    velo = cam @ R_VELO_TO_CAM  # inverse of a rotation: its transpose, applied on the right
    pts = np.hstack([velo, np.ones((len(velo), 1))]).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    pts.tofile(path)


def _generate(root: Path, spec: SyntheticSpec) -> SyntheticDataset:
    if spec.frames_per_scene < 3 or spec.num_scenes <= spec.val_scenes or spec.val_scenes < 1:
        raise ValueError(
            "synthetic scenes need frames_per_scene >= 3 and num_scenes > val_scenes >= 1 "
            f"(got {spec.frames_per_scene}, {spec.num_scenes}, {spec.val_scenes})"
        )
    rng = np.random.default_rng(spec.seed)
    K = _intrinsics(spec.height, spec.width)
    date_dir = root / DATE
    date_dir.mkdir(parents=True)
    _write_calib(date_dir, K, spec.height, spec.width)
    train: list[SplitItem] = []
    val: list[SplitItem] = []
    gts: list[np.ndarray] = []
    for s in range(spec.num_scenes):
        scene, folder = _Scene(rng), f"{DATE}/{DATE}_drive_{s:04d}_sync"
        is_val = s >= spec.num_scenes - spec.val_scenes
        drive_dir = root / folder
        drive_dir.mkdir(parents=True, exist_ok=True)
        _write_poses(
            drive_dir / POSES_FILE,
            [f * scene.speed for f in range(spec.frames_per_scene)],
        )
        for f in range(spec.frames_per_scene):
            img, depth = scene.render(f * scene.speed, K, spec.height, spec.width)
            image_dir = root / folder / "image_02" / "data"
            image_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(image_dir / f"{f:010d}.png")
            _write_velodyne(root / folder / "velodyne_points" / "data" / f"{f:010d}.bin", depth, K)
            if 0 < f < spec.frames_per_scene - 1:
                (val if is_val else train).append(SplitItem(folder, f))
                if is_val:
                    gts.append(depth)
    data = SyntheticDataset(
        root,
        root / "splits" / "train_files.txt",
        root / "splits" / "val_files.txt",
        root / "gt_depths.npz",
    )
    write_split(data.train_split, train)
    write_split(data.val_split, val)
    save_gt_depths(data.gt_path, gts, items=val)
    (root / _MARKER).write_text(json.dumps(asdict(spec)))
    return data


def default_root(spec: SyntheticSpec) -> Path:
    """``<user cache>/synthetic/<spec>`` (:mod:`snnsearch.cache`), shared by concurrent trials
    on one machine and listed by ``python -m snnsearch.cache --list``."""
    key = "_".join(str(v) for v in asdict(spec).values())
    return user_cache.kind_dir("synthetic") / key


def ensure_synthetic(
    root: str | Path | None = None, spec: SyntheticSpec = SyntheticSpec()
) -> SyntheticDataset:
    """Generates the dataset under ``root`` unless an identical one is already there.

    Generation goes to a temporary sibling that is renamed into place, so concurrent trials never
    read a half-written dataset (the loser of the race discards its copy).
    """
    root = Path(root) if root else default_root(spec)
    paths = SyntheticDataset(
        root,
        root / "splits" / "train_files.txt",
        root / "splits" / "val_files.txt",
        root / "gt_depths.npz",
    )
    marker = root / _MARKER
    if marker.exists():
        if json.loads(marker.read_text()) != asdict(spec):
            raise ValueError(
                f"{root} holds other synthetic scenes ({marker}); pick another data_dir"
            )
        return paths
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} is not empty and not a synthetic dataset; use another data_dir")
    root.parent.mkdir(parents=True, exist_ok=True)
    with user_cache.build_lock(root):  # one generator per root; --clear waits for it
        if marker.exists():
            return ensure_synthetic(root, spec)  # generated by another process meanwhile
        tmp = Path(tempfile.mkdtemp(prefix=".synthetic_", dir=root.parent))
        try:
            _generate(tmp, spec)
            user_cache.describe(tmp, f"synthetic depth scenes ({spec.num_scenes} scenes x "
                                f"{spec.frames_per_scene} frames, {spec.width}x{spec.height})",
                                spec=asdict(spec))
            if root.exists():
                root.rmdir()
            os.replace(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return paths
