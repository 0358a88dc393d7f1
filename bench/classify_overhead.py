"""Benchmark (not a test): training throughput of the report's CSNN through snnsearch's trainable
against bare spikingjelly loops of the same network, measured in one run, interleaved.

Network: CSNN C=128, T=4, IF, ATan, bs=128, Adam 1e-3, MSE on one-hot (anchor: 21.8k img/s on an
H200, bare spikingjelly 2.0 loop).
Arms:
  trainable      snnsearch.classify.trainable.train_classifier (reported train_images_per_s, and
                 the whole epoch wall time including validation, energy/firing probe and checkpoint)
  bare_same      a hand-written spikingjelly loop of exactly the same network (static stem run once)
  bare_tutorial  spikingjelly's tutorial form: image repeated over T, first conv run every step

Usage:
  python bench/classify_overhead.py --data-dir <root with MNIST/raw> [--images 4096] [--rounds 3]
  [--device cuda]   # plus --accuracy to run the T in {2,4,8} accuracy sweep on a GPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from snnsearch.data import iterate_batches, load_classification
from spikingjelly.activation_based import functional, layer, neuron, surrogate

from snnsearch.classify.trainable import train_classifier
from snnsearch.training.reporter import LocalReporter


def bare_csnn(channels: int, static_stem: bool) -> nn.Module:
    def sn() -> nn.Module:
        return neuron.IFNode(surrogate_function=surrogate.ATan(), detach_reset=True, step_mode="m")

    c = channels
    body = [
        sn(), layer.MaxPool2d(2, step_mode="m"),
        layer.Conv2d(c, c, 3, padding=1, bias=False, step_mode="m"), layer.BatchNorm2d(c, step_mode="m"),
        sn(), layer.MaxPool2d(2, step_mode="m"), layer.Flatten(step_mode="m"),
        layer.Linear(c * 49, c * 16, bias=False, step_mode="m"), sn(),
        layer.Linear(c * 16, 10, bias=False, step_mode="m"), sn(),
    ]
    stem = [nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)]
    if static_stem:
        return nn.ModuleDict({"stem": nn.Sequential(*stem), "body": nn.Sequential(*body)})
    stem = [layer.Conv2d(1, c, 3, padding=1, bias=False, step_mode="m"), layer.BatchNorm2d(c, step_mode="m")]
    return nn.ModuleDict({"stem": nn.Sequential(), "body": nn.Sequential(*stem, *body)})


def run_bare(x: torch.Tensor, y: torch.Tensor, *, static_stem: bool, T: int, bs: int,
             channels: int) -> float:
    torch.manual_seed(0)
    net = bare_csnn(channels, static_stem).to(x.device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for xb, yb in iterate_batches(x, y, bs, generator=gen):
        opt.zero_grad(set_to_none=True)
        if static_stem:
            seq = net["stem"](xb).unsqueeze(0).repeat(T, 1, 1, 1, 1)
        else:
            seq = xb.unsqueeze(0).repeat(T, 1, 1, 1, 1)
        out = net["body"](seq).mean(0)
        loss = F.mse_loss(out, F.one_hot(yb, 10).float())
        loss.backward()
        opt.step()
        functional.reset_net(net)
    if x.is_cuda:
        torch.cuda.synchronize()
    return len(x) / (time.perf_counter() - start)


def run_trainable(data_dir: str, images: int, *, T: int, bs: int, channels: int, device: str) -> tuple[float, float]:
    reporter = LocalReporter(f"/tmp/snnsearch_bench_{time.time_ns()}")
    start = time.perf_counter()
    metrics = train_classifier(
        {"data_dir": data_dir, "train_subset": images, "val_size": 5000, "model": "csnn",
         "channels": channels, "T": T, "neuron": "if", "batch_size": bs, "epochs": 1,
         "lr_schedule": "none", "device": device, "figures": True}, reporter)
    wall = time.perf_counter() - start
    return metrics["train_images_per_s"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    data = load_classification("mnist", root=args.data_dir, train_subset=args.images, device=args.device)
    kw = dict(T=args.T, bs=args.batch_size, channels=args.channels)
    results: dict[str, list[float]] = {"trainable": [], "trainable_epoch_wall_s": [], "bare_same": [],
                                       "bare_tutorial": []}
    run_bare(data.train_x[:256], data.train_y[:256], static_stem=True, **kw)  # warm-up
    for _ in range(args.rounds):  # interleaved, so load changes hit every arm alike
        ips, wall = run_trainable(args.data_dir, args.images, device=args.device, **kw)
        results["trainable"].append(ips)
        results["trainable_epoch_wall_s"].append(wall)
        results["bare_same"].append(run_bare(data.train_x, data.train_y, static_stem=True, **kw))
        results["bare_tutorial"].append(run_bare(data.train_x, data.train_y, static_stem=False, **kw))
    med = {k: statistics.median(v) for k, v in results.items()}
    summary = {
        "device": args.device, "images": args.images, **{f"median_{k}": round(v, 2) for k, v in med.items()},
        "overhead_vs_bare_same_pct": round(100 * (med["bare_same"] / med["trainable"] - 1), 2),
        "speedup_vs_bare_tutorial": round(med["trainable"] / med["bare_tutorial"], 3),
        "raw": results,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
