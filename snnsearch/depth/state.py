"""The trainable state of one depth run: networks, optimiser, scheduler, epoch, RNG; checkpoint
save/restore; and the data-loading pieces that must survive a resume unchanged (epoch-seeded
shuffling, worker count from the trial's CPUs).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import Sampler

from snnsearch.depth.config import MODEL_KEYS, DepthConfig
from snnsearch.depth.models.net import (
    DepthModelSpec,
    build_depth_net,
    build_pose_net,
    set_initial_depth,
)
from snnsearch.training.checkpoint import load_checkpoint


def model_spec(cfg: DepthConfig) -> DepthModelSpec:
    return DepthModelSpec(
        cfg.encoder, cfg.depth, cfg.neuron_spec(), cfg.T, cfg.num_scales,
        channels=cfg.channels, grad_checkpoint=cfg.grad_checkpoint,
    )


def check_resume(saved: dict[str, Any], cfg: DepthConfig, directory: str) -> None:
    differing = [k for k in MODEL_KEYS if k in saved and saved.get(k) != getattr(cfg, k)]
    if differing:
        raise ValueError(
            f"checkpoint {directory} was trained with other model keys: "
            + ", ".join(f"{k}={saved.get(k)!r} (config {getattr(cfg, k)!r})" for k in differing)
        )


class DepthRun:
    """Models, optimiser and scheduler of one run.

    ``pose_net`` is None with ``pose=known`` (the camera motion is given): nothing unused is
    built, trained or saved, which keeps those checkpoints ~30% smaller. ``forward_net`` is what
    the loops call: the depth net itself, or its ``torch.compile`` wrapper (``compile=true``);
    checkpoints always hold the plain module's state dict.
    """

    def __init__(self, cfg: DepthConfig, device: torch.device) -> None:
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.depth_net = build_depth_net(model_spec(cfg), cfg.pretrain).to(device)
        if cfg.init_depth > 0:
            set_initial_depth(self.depth_net, cfg.init_depth)
        self.pose_net: nn.Module | None = None
        if cfg.pose == "net":
            pose_pretrain = cfg.pretrain if cfg.pretrain == "imagenet" else "none"
            self.pose_net = build_pose_net(pose_pretrain).to(device)
        params = list(self.depth_net.parameters())
        if self.pose_net is not None:
            params += list(self.pose_net.parameters())
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, cfg.scheduler_step, 0.1)
        self.epoch = 0
        self.forward_net: nn.Module = self.depth_net
        if cfg.compile:
            self.forward_net = torch.compile(  # type: ignore[assignment]
                self.depth_net, backend=cfg.compile_backend
            )

    def state(self) -> dict[str, Any]:
        state = {
            "model": self.depth_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "config": self.cfg.as_dict(),
        }
        if self.pose_net is not None:
            state["pose"] = self.pose_net.state_dict()
        return state

    def restore(self, directory: str) -> None:
        state = load_checkpoint(directory)
        check_resume(state.get("config", {}), self.cfg, directory)
        self.depth_net.load_state_dict(state["model"])
        if self.pose_net is not None:
            self.pose_net.load_state_dict(state["pose"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        torch.set_rng_state(state["rng_torch"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])


class EpochShuffle(Sampler[int]):
    """A permutation that is a function of (seed, epoch) only, so a resumed run sees the same
    batches, and one DataLoader (with persistent workers) serves every epoch."""

    def __init__(self, size: int, *, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


class SortedBatches(Sampler[list[int]]):
    """Batches of ``sampler``'s indices, each sorted (the last one may be short).

    Why sorted: a batch of the frame cache is one indexed read of a memory map (see
    ``KittiRawDataset.__getitems__``); with the items in dataset order its rows run mostly
    forwards, as the file's pages do. The batch's members are the sampler's, so training sees
    the same batches as unsorted; the order within a batch does not matter to the loss, and each
    batch carries its items' indices (``DepthSample.idx``).
    """

    def __init__(self, sampler: Sampler[int], *, batch_size: int) -> None:
        self.sampler, self.batch_size = sampler, batch_size

    def __len__(self) -> int:
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield sorted(batch)
                batch = []
        if batch:
            yield sorted(batch)


def loader_workers(requested: int) -> int:
    """DataLoader workers: ``requested`` if >= 0; -1 follows the CPUs Ray assigned to this trial
    (``cpus_per_trial``), keeping one for the training loop; 0 outside a Ray trial (also in a
    process that merely has Ray initialised, e.g. a driver or notebook training in-process)."""
    if requested >= 0:
        return requested
    try:
        import ray

        # A trial runs in an actor; in a driver get_assigned_resources() asserts.
        if ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None:
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
            return max(0, int(cpus) - 1)
    except (ImportError, RuntimeError):
        pass
    return 0
