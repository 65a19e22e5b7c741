"""The training loop, one epoch at a time; the plain path and every Ray Train worker run this same code."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from guessme_core import GuessmeCNN
from guessme_train.augment import augment_batch
from guessme_train.datasets import Digits
from guessme_train.params import ModelParams, Params


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


# Called after every epoch with the metrics and the (unwrapped) model.
EpochCallback = Callable[[EpochMetrics, nn.Module], None]


def build_model(params: ModelParams) -> GuessmeCNN:
    return GuessmeCNN(width=params.width, dropout=params.dropout)


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel wrapper."""
    inner = getattr(model, "module", model)
    return inner if isinstance(inner, nn.Module) else model


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits for (N, 1, 28, 28) images, in eval mode; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, digits: Digits) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) on a labelled set; (nan, nan) for an empty one."""
    if len(digits) == 0:
        return float("nan"), float("nan")
    logits = predict(model, digits.images())
    labels = digits.labels()
    loss = F.cross_entropy(logits, labels).item()
    return loss, (logits.argmax(1) == labels).float().mean().item()


def rank_shard(permutation: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's share of an epoch: every world_size-th sample, all shares the same length
    (DDP needs the same number of steps on every rank)."""
    usable = len(permutation) - len(permutation) % world_size
    return permutation[:usable][rank::world_size]


def train_model(
    params: Params,
    train: Digits,
    val: Digits,
    *,
    rank: int = 0,
    world_size: int = 1,
    wrap_model: Callable[[nn.Module], nn.Module] = lambda m: m,
    on_epoch: EpochCallback | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> nn.Module:
    """Train `params.train.epochs` epochs; with world_size > 1, this rank takes its share of every batch.

    All ranks draw the same seeded permutation and take every world_size-th sample of it, so the
    global batch (params.train.batch_size) and the number of steps are the same for any world size.
    """
    tp = params.train
    torch.set_num_threads(tp.torch_threads)
    torch.manual_seed(tp.seed)
    model = wrap_model(build_model(params.model))
    bare = unwrap(model)

    x_all, y_all = train.images(), train.labels()
    local_batch = max(1, tp.batch_size // world_size)
    steps = -(-(len(train) // world_size) // local_batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=tp.lr, total_steps=tp.epochs * steps)
    order_rng = np.random.default_rng(tp.seed)
    aug_gen = torch.Generator().manual_seed(tp.seed * 1000 + rank)

    for epoch in range(1, tp.epochs + 1):
        start = time.perf_counter()
        model.train()
        shard = rank_shard(order_rng.permutation(len(train)), rank, world_size)
        loss_sum, correct = 0.0, 0
        for step in range(steps):
            idx = torch.from_numpy(shard[step * local_batch : (step + 1) * local_batch])
            images = augment_batch(x_all[idx], params.augment, aug_gen)
            labels = y_all[idx]
            logits = model(images)
            loss = F.cross_entropy(logits, labels, label_smoothing=tp.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == labels).sum())
            if progress is not None:
                progress(step + 1, steps)
        val_loss, val_acc = evaluate(bare, val)
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=loss_sum / len(shard),
            train_accuracy=correct / len(shard),
            val_loss=val_loss,
            val_accuracy=val_acc,
            lr=float(scheduler.get_last_lr()[0]),
            seconds=time.perf_counter() - start,
        )
        if on_epoch is not None:
            on_epoch(metrics, bare)
    bare.eval()
    return bare
