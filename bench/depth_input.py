"""Input-pipeline throughput of the depth task: items/s of the PNG path vs the decoded-frame cache.

An item is a [0, -1, +1] frame triplet at the training resolution (default 640×192), delivered
by a DataLoader (batch 12, the trainable's collate) with 1 and 2 workers. The PNG path decodes
three full-size KITTI PNGs and LANCZOS-resizes them per item; the cache path slices a uint8
memory-mapped array built once (snnsearch.depth.data.frame_cache; its build time is printed too).
Items repeat the KITTI sample's 8 triplets, so files and cache are in the page cache: this
measures decode/copy cost, not disk bandwidth.

    python bench/depth_input.py --root ../shared/data/kitti_raw_sample
    python bench/depth_input.py --root /data/kitti --json out.json --step   # on a GPU node

``--step`` (CUDA only) also feeds a real train step (MS-ResNet-18, T=2, I-LIF D=4) from the cache
loader and reports the GPU busy fraction (step time / wall time). Target (issue 9): the cache
path ≥ 10× the PNG path and ≥ 750 items/s with 2 workers (a 16 ms batch-12 step needs 750).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from snnsearch.depth.data.frame_cache import ensure_cache
from snnsearch.depth.data.kitti import KittiRawDataset, frame_paths, scan_frames
from snnsearch.depth.engine import collate


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the loader's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def items_per_s(
    dataset: KittiRawDataset, workers: int, batch: int, min_items: int
) -> tuple[float, float]:
    """(items per wall second, items per CPU second of loader + workers).

    Why both: on a shared machine the wall rate depends on the other load; the CPU rate is the
    cost per item, and ``workers`` × it bounds what that many dedicated cores deliver. Workers are
    not persistent here so that their CPU time is counted when they exit.
    """
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=collate,
                        pin_memory=torch.cuda.is_available())
    seen, wall, cpu = 0, time.perf_counter(), _cpu_s()
    while seen < min_items:
        for b in loader:
            seen += b.frames.shape[0]
    wall = time.perf_counter() - wall
    del loader  # joins the workers, so RUSAGE_CHILDREN includes them
    return seen / wall, seen / (_cpu_s() - cpu)


def feed_step(dataset: KittiRawDataset, workers: int, batch: int, steps: int) -> dict:
    """GPU busy fraction of a real train step fed by ``dataset`` (CUDA only)."""
    from snnsearch.depth.engine import LossSettings, train_epoch
    from snnsearch.depth.models.net import DepthModelSpec, build_depth_net, build_pose_net
    from snnsearch.snn.neurons import NeuronSpec

    device = torch.device("cuda")
    net = build_depth_net(DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="ilif", D=4), 2))
    pose = build_pose_net()
    net, pose = net.to(device), pose.to(device)
    opt = torch.optim.Adam([*net.parameters(), *pose.parameters()], lr=1e-4)
    loader = DataLoader(torch.utils.data.Subset(dataset, list(range(steps * batch))),
                        batch_size=batch, num_workers=workers, collate_fn=collate,
                        pin_memory=True, persistent_workers=workers > 0)
    train_epoch(net, pose, loader, opt, device, LossSettings())  # warm-up (cudnn, workers)
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    wall = time.perf_counter()
    start.record()
    train_epoch(net, pose, loader, opt, device, LossSettings())
    end.record()
    torch.cuda.synchronize()
    wall = time.perf_counter() - wall
    # Busy time: the same steps on a batch already on the device (no input pipeline).
    frames = next(iter(loader))
    resident = [frames] * steps
    t = time.perf_counter()
    train_epoch(net, pose, resident, opt, device, LossSettings())  # type: ignore[arg-type]
    torch.cuda.synchronize()
    busy = time.perf_counter() - t
    return {"steps": steps, "wall_s": wall, "compute_only_s": busy, "gpu_busy": busy / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / ".." /
                                              "shared" / "data" / "kitti_raw_sample"))
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--png-items", type=int, default=96, help="items timed on the PNG path")
    parser.add_argument("--cache-items", type=int, default=3000, help="items timed on the cache")
    parser.add_argument("--cache-dir", default="", help="default: a temp dir, removed after")
    parser.add_argument("--step", action="store_true", help="also feed a real step (CUDA)")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = scan_frames(args.root)
    if not base:
        parser.error(f"no KITTI frames under {args.root}")
    items = (base * (args.cache_items // len(base) + 1))[: max(args.cache_items, len(base))]
    with tempfile.TemporaryDirectory(prefix="depth_input_") as tmp:
        start = time.perf_counter()
        cache = ensure_cache(args.root, frame_paths(args.root, base), height=args.height,
                             width=args.width, cache_dir=args.cache_dir or tmp, workers=2)
        build_s = time.perf_counter() - start
        png = KittiRawDataset(args.root, items, height=args.height, width=args.width)
        cached = KittiRawDataset(args.root, items, height=args.height, width=args.width,
                                 cache=cache)
        rows = []
        for w in (int(x) for x in args.workers.split(",")):
            p, p_cpu = items_per_s(png, w, args.batch, args.png_items)
            c, c_cpu = items_per_s(cached, w, args.batch, args.cache_items)
            rows.append({"workers": w, "png_items_per_s": p, "cache_items_per_s": c,
                         "png_items_per_cpu_s": p_cpu, "cache_items_per_cpu_s": c_cpu,
                         "speedup_wall": c / p, "speedup_cpu": c_cpu / p_cpu})
            print(f"{w} worker(s): PNG {p:7.1f} items/s ({p_cpu:6.1f}/CPU-s)   cache "
                  f"{c:8.1f} items/s ({c_cpu:7.1f}/CPU-s)   x{c / p:.0f} wall, "
                  f"x{c_cpu / p_cpu:.0f} CPU", flush=True)
        out = {"root": args.root, "height": args.height, "width": args.width,
               "batch": args.batch, "cache_build_s": build_s, "frames_cached": len(cache.rows),
               "rows": rows}
        print(f"cache build: {len(cache.rows)} frames in {build_s:.2f} s")
        if args.step and torch.cuda.is_available():
            out["step"] = feed_step(cached, max(rows[-1]["workers"], 1), args.batch, 50)
            print(f"fed step: GPU busy {out['step']['gpu_busy']:.0%}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
