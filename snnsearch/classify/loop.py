"""Straight-line epoch functions (nanoGPT style): no trainer object, state passed in and out.

``functional.reset_net`` after every batch clears membrane potentials, so nothing leaks from one
batch (or from training into evaluation) to the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from snnsearch.classify.data import iterate_batches
from snnsearch.registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: Registry[LossFn] = Registry("loss")


@LOSSES.register("mse")
def mse_on_rates(output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MSE between output firing rates and one-hot labels (spikingjelly's tutorial loss)."""
    return F.mse_loss(output, F.one_hot(labels, output.shape[1]).to(output.dtype))


@LOSSES.register("ce")
def cross_entropy(output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(output, labels)


def train_one_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    batch_size: int,
    generator: torch.Generator,
) -> dict[str, float]:
    """One pass over the training tensors in a ``generator``-seeded order.

    Returns:
        ``train_loss``, ``train_acc`` (means over samples), ``seconds`` and ``images``.
    """
    model.train()
    # Sums stay on the device: a float() per batch would force a GPU sync every step.
    total_loss = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    start = time.perf_counter()
    for x, y in iterate_batches(images, labels, batch_size, generator=generator):
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        optimizer.step()
        functional.reset_net(model)
        total_loss += loss.detach() * len(y)
        correct += (out.detach().argmax(1) == y).sum()
    seen = len(labels)
    result = {"train_loss": float(total_loss) / seen, "train_acc": int(correct) / seen}
    seconds = time.perf_counter() - start  # float()/int() above synchronised the device
    return {**result, "seconds": seconds, "images": seen}


@torch.no_grad()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, loss_fn: LossFn,
    batch_size: int,
) -> dict[str, float]:
    """Loss and accuracy over the given tensors (no shuffling, eval mode)."""
    model.eval()
    total_loss = correct = 0.0
    for x, y in iterate_batches(images, labels, batch_size):
        out = model(x)
        functional.reset_net(model)
        total_loss += float(loss_fn(out, y)) * len(y)
        correct += float((out.argmax(1) == y).sum())
    return {"loss": total_loss / len(labels), "acc": correct / len(labels)}
