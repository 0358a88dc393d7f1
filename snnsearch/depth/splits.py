"""Honest KITTI splits: drive-disjoint train/val files, and the overlap check a sweep runs first.

A sweep ranks trials by their error on the val split, so a val frame that is also trained on makes
the ranking reward memorisation. Frames of one drive are near-duplicates of each other (10 Hz), so
the split is made per drive: a seeded fraction of drives is held out for validation, and the drives
of a given test list (e.g. monodepth2's ``splits/eigen/test_files.txt``) are used by neither
(the sweep must never select on its test split; ``snnsearch.evaluate`` uses it once).

    python -m snnsearch.depth.splits <kitti_root> --out <kitti_root>/splits \\
        [--val-fraction 0.1] [--seed 0] [--exclude eigen_test_files.txt] [--sides l,r]

writes ``train_files.txt``, ``val_files.txt`` (monodepth2's format) and ``val_gt_depths.npz`` (the
val frames' velodyne GT, so trials need not project the scans again).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snnsearch.depth.data.kitti import FRAME_IDS, SplitItem, read_split, scan_frames, write_split

log = logging.getLogger(__name__)
TRAIN_FILE, VAL_FILE, VAL_GT_FILE = "train_files.txt", "val_files.txt", "val_gt_depths.npz"


@dataclass(frozen=True)
class SplitFiles:
    """Paths written by :func:`write_splits`, with the item counts."""

    train: Path
    val: Path
    val_gt: Path
    train_items: int
    val_items: int
    val_drives: tuple[str, ...]


def resolve(data_dir: str | Path, path: str | Path) -> Path:
    """``path`` itself when absolute, else relative to the data root (so a space file can say
    ``splits/train_files.txt`` for whatever ``--data-dir`` a cluster uses)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(data_dir) / path


def check_disjoint(
    train: Sequence[SplitItem], val: Sequence[SplitItem], *, names: tuple[str, str] = ("train", "val")
) -> list[str]:
    """Raises a one-line ValueError if a frame is in both splits; returns warnings for shared drives.

    A frame counts as shared whatever its side: the left and right images of one instant show the
    same scene.
    """
    seen = {(i.folder, i.frame) for i in train}
    both = [i for i in val if (i.folder, i.frame) in seen]
    if both:
        first = both[0]
        raise ValueError(
            f"{len(both)} frame(s) are in both the {names[0]} and the {names[1]} split, e.g. "
            f"'{first.folder} {first.frame}': validation would rank trials on training frames; "
            "write drive-disjoint splits with python -m snnsearch.depth.splits <kitti_root> --out DIR"
        )
    shared = sorted({i.folder for i in train} & {i.folder for i in val})
    if not shared:
        return []
    warning = (
        f"{len(shared)} drive(s) are in both the {names[0]} and the {names[1]} split (e.g. "
        f"{shared[0]}): neighbouring frames of one drive are near-duplicates, so validation is "
        "optimistic; prefer drive-disjoint splits (python -m snnsearch.depth.splits)"
    )
    return [warning]


def split_drives(
    items: Sequence[SplitItem], *, val_fraction: float, seed: int, exclude: Sequence[SplitItem] = ()
) -> tuple[list[SplitItem], list[SplitItem], tuple[str, ...]]:
    """(train items, val items, val drives): whole drives held out, the drives of ``exclude``
    dropped. Seeded with its own generator (no global RNG), so the same seed gives the same split.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val fraction must be in (0, 1) (got {val_fraction})")
    banned = {i.folder for i in exclude}
    drives = sorted({i.folder for i in items} - banned)
    if len(drives) < 2:
        raise ValueError(
            f"{len(drives)} drive(s) left after excluding the test list's {len(banned)}; a "
            "drive-disjoint split needs at least 2"
        )
    order = np.random.default_rng(seed).permutation(len(drives))
    n_val = min(len(drives) - 1, max(1, round(val_fraction * len(drives))))
    val_drives = tuple(sorted(drives[k] for k in order[:n_val]))
    train = [i for i in items if i.folder in drives and i.folder not in val_drives]
    val = [i for i in items if i.folder in val_drives]
    return train, val, val_drives


def write_splits(
    root: str | Path,
    out: str | Path,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    exclude: Sequence[str | Path] = (),
    sides: Sequence[str] = ("l",),
    frame_ids: Sequence[int] = FRAME_IDS,
    gt: bool = True,
) -> SplitFiles:
    """Scans ``root``, splits it by drive and writes the split files (and the val GT) to ``out``."""
    from snnsearch.depth.data.gt import depth_map, save_gt_depths

    items = scan_frames(root, frame_ids, sides)
    if not items:
        raise ValueError(f"no KITTI frames with neighbours {tuple(frame_ids)} under {root}")
    excluded = [i for path in exclude for i in read_split(path)]
    train, val, val_drives = split_drives(
        items, val_fraction=val_fraction, seed=seed, exclude=excluded
    )
    check_disjoint(train, val)
    # GT first: a missing scan fails before any file is written.
    gts = [depth_map(root, i) for i in val] if gt else []
    out = Path(out)
    files = SplitFiles(
        write_split(out / TRAIN_FILE, train),
        write_split(out / VAL_FILE, val),
        out / VAL_GT_FILE,
        len(train),
        len(val),
        val_drives,
    )
    if gt:
        save_gt_depths(files.val_gt, gts, items=val)
    return files


def check_config_splits(config: Mapping[str, Any]) -> list[str]:
    """The sweep driver's check of a depth trial config before any trial starts.

    For ``data: kitti`` both split files must exist, share no frame (an error) and preferably no
    drive (a warning, returned). Other data sources generate disjoint splits themselves.
    """
    if config.get("data", "synthetic") != "kitti":
        return []
    data_dir = config.get("data_dir")
    if not data_dir:
        raise ValueError("data=kitti needs the KITTI raw root: pass --data-dir")
    keys = ("train_split", "val_split")
    for key in keys:
        if str(config.get(key, "auto")) in ("", "auto"):
            raise ValueError(
                f"data=kitti needs an explicit {key} file ('auto' would validate on training "
                "frames); write drive-disjoint ones with python -m snnsearch.depth.splits "
                f"{data_dir} --out {data_dir}/splits"
            )
    paths = [resolve(data_dir, str(config[key])) for key in keys]
    for key, path in zip(keys, paths):
        if not path.is_file():
            raise ValueError(
                f"{key} file not found: {path} (relative paths are under --data-dir; write it "
                "with python -m snnsearch.depth.splits)"
            )
    train, val = (read_split(p) for p in paths)
    return check_disjoint(train, val, names=(str(paths[0]), str(paths[1])))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m snnsearch.depth.splits",
        description="Write drive-disjoint KITTI train/val split files and the val GT.",
    )
    p.add_argument("root", help="KITTI raw root (holds <date>/<date>_drive_<id>_sync)")
    p.add_argument("--out", required=True, help="output folder (e.g. <root>/splits)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of drives held out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exclude", action="append", default=[],
                   help="split file whose drives are used by neither split (a test list); repeat")
    p.add_argument("--sides", default="l", help="l, r or l,r (image_02 / image_03)")
    p.add_argument("--no-gt", action="store_true", help="skip the val GT export")
    args = p.parse_args(argv)
    try:
        files = write_splits(
            args.root, args.out, val_fraction=args.val_fraction, seed=args.seed,
            exclude=args.exclude, sides=tuple(args.sides.split(",")), gt=not args.no_gt,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"train: {files.train_items} items -> {files.train}\n"
          f"val: {files.val_items} items of {len(files.val_drives)} drive(s) -> {files.val}")
    if not args.no_gt:
        print(f"val GT -> {files.val_gt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
