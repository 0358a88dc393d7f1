"""Train-step time and peak memory of the depth network (issue 3, item 10).

Measures one full self-supervised step (depth net + pose net forward, monodepth2 loss at 4 scales,
backward, Adam step) for the ANN ResNet-18 baseline and MS-ResNet-18 encoders:
T=2 I-LIF D=4, T=4 LIF, T=20 LIF. On CUDA it runs the issue's setting (192×640, batch 12); on CPU
it runs a small setting so the script can be checked anywhere (numbers are then only a smoke test).

    python bench/depth_step.py                 # auto: full size on CUDA, small on CPU
    python bench/depth_step.py --json out.json --steps 20 --warmup 5
    python bench/depth_step.py --cases ann,ilif_t2_d4 --height 96 --width 320 --batch 4
    python bench/depth_step.py --compile --precision bf16 --grad-checkpoint   # knobs per run

Reference on an H200 (bare spikingjelly loop, measured): ANN 16.6 ms, T=2 D=4 37.7 ms, T=4 LIF
35.0 ms, T=20 LIF 124.9 ms (25 GB). Target: T=2 D=4 ≤ 1.5× the ANN's step time (stretch 1.3×).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass

import torch

from snnsearch.depth.engine import LossSettings, autocast, compute_loss
from snnsearch.depth.models.net import DepthModelSpec, build_depth_net, build_pose_net
from snnsearch.snn.neurons import NeuronSpec

CASES = {
    "ann": DepthModelSpec("resnet", 18),
    "ilif_t2_d4": DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="ilif", D=4), T=2),
    "lif_t4": DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="lif"), T=4),
    "lif_t20": DepthModelSpec("ms_resnet", 18, NeuronSpec(kind="lif"), T=20),
}


@dataclass
class StepResult:
    case: str
    device: str
    height: int
    width: int
    batch: int
    step_ms: float
    peak_mem_gb: float | None
    compiled: bool = False
    precision: str = "fp32"
    grad_checkpoint: bool = False
    ratio_to_ann: float | None = None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_case(
    name: str, device: torch.device, h: int, w: int, batch: int, steps: int, warmup: int,
    *, compiled: bool = False, precision: str = "fp32", grad_checkpoint: bool = False,
) -> StepResult:
    """Median wall time of ``steps`` train steps after ``warmup`` (cudnn autotune, allocator,
    and the compilation when ``compiled``)."""
    from dataclasses import replace

    torch.manual_seed(0)
    depth_net = build_depth_net(replace(CASES[name], grad_checkpoint=grad_checkpoint)).to(device)
    forward_net = torch.compile(depth_net) if compiled else depth_net
    pose_net = build_pose_net().to(device)
    params = list(depth_net.parameters()) + list(pose_net.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-4)
    frames = torch.rand(batch, 3, 3, h, w, device=device)
    K = torch.eye(4, device=device).repeat(batch, 1, 1)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2] = 0.58 * w, 1.92 * h, 0.5 * w, 0.5 * h
    settings = LossSettings()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        with autocast(device, precision):
            loss = compute_loss(forward_net, pose_net, frames, frames, K, settings)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        optimizer.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    times.sort()
    return StepResult(name, str(device), h, w, batch, 1e3 * times[len(times) // 2], peak,
                      compiled, precision, grad_checkpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--height", type=int, default=0, help="0: 192 on CUDA, 64 on CPU")
    parser.add_argument("--width", type=int, default=0, help="0: 640 on CUDA, 192 on CPU")
    parser.add_argument("--batch", type=int, default=0, help="0: 12 on CUDA, 2 on CPU")
    parser.add_argument(
        "--cases", default="", help="comma list; default all on CUDA, ann+ilif_t2_d4 on CPU"
    )
    parser.add_argument(
        "--steps", type=int, default=0, help="timed steps (0: 20 on CUDA, 2 on CPU)"
    )
    parser.add_argument(
        "--warmup", type=int, default=-1, help="untimed steps (-1: 5 on CUDA, 1 on CPU)"
    )
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument("--compile", action="store_true", help="torch.compile the depth net")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--grad-checkpoint", action="store_true",
                        help="activation checkpointing per MS-ResNet stage")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() if args.device == "auto" else args.device.startswith("cuda")
    device = torch.device(("cuda" if args.device == "auto" else args.device) if cuda else "cpu")
    h, w = args.height or (192 if cuda else 64), args.width or (640 if cuda else 192)
    batch = args.batch or (12 if cuda else 2)
    steps, warmup = (
        args.steps or (20 if cuda else 2),
        args.warmup if args.warmup >= 0 else (5 if cuda else 1),
    )
    names = (
        args.cases.split(",") if args.cases else (list(CASES) if cuda else ["ann", "ilif_t2_d4"])
    )
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; choose from {', '.join(CASES)}")
    if cuda:
        torch.backends.cudnn.benchmark = True
    results = [
        bench_case(n, device, h, w, batch, steps, warmup, compiled=args.compile,
                   precision=args.precision, grad_checkpoint=args.grad_checkpoint)
        for n in names
    ]
    ann = next((r.step_ms for r in results if r.case == "ann"), None)
    for r in results:
        r.ratio_to_ann = r.step_ms / ann if ann else None
        mem = f"{r.peak_mem_gb:.1f} GB" if r.peak_mem_gb is not None else "n/a"
        ratio = f"{r.ratio_to_ann:.2f}×" if r.ratio_to_ann else "-"
        print(
            f"{r.case:12s} {r.device:6s} {r.height}×{r.width} bs{r.batch}: "
            f"{r.step_ms:8.1f} ms/step  peak {mem}  vs ANN {ratio}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in results], f, indent=1)


if __name__ == "__main__":
    main()
