"""The training loop, one epoch at a time; the plain path and every Ray Train worker run this same code."""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from guessme_core import GuessmeCNN
from guessme_train.augment import augment_batch
from guessme_train.datasets import Digits
from guessme_train.device import to_device
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


def model_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """The model in eval mode for the block, its own mode restored after. A torch.export module (a
    registered pt2 model, guessme_train.mlflow_model) has no train()/eval(): it was exported in eval
    mode and runs as it is."""
    was_training = model.training
    try:
        model.eval()
    except NotImplementedError:
        yield
        return
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits (on the CPU) for (N, 1, 28, 28) CPU images, computed on the model's device, in eval
    mode: every evaluation of a model (held-out metrics, the pipeline's comparison) goes through here."""
    device = model_device(model)
    with eval_mode(model):
        return torch.cat(
            [
                model(to_device(images[i : i + batch_size], device)).cpu()
                for i in range(0, len(images), batch_size)
            ]
        )


def evaluate(model: nn.Module, digits: Digits) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) on a labelled set; (nan, nan) for an empty one."""
    if len(digits) == 0:
        return float("nan"), float("nan")
    logits = predict(model, digits.images())
    labels = digits.labels()
    loss = F.cross_entropy(logits, labels).item()
    return loss, (logits.argmax(1) == labels).float().mean().item()


def evaluate_across_ranks(
    model: nn.Module, digits: Digits, rank: int, world_size: int
) -> tuple[float, float]:
    """evaluate() of rank 0's model, the rows shared between the ranks of a torch.distributed group.

    Each rank runs every world_size-th row and the sums are all-reduced, so the held-out pass costs
    each rank 1/world_size of it instead of all of it. Rank 0's buffers (BatchNorm statistics, which
    each rank updated from its own last batch) are broadcast first: every rank then runs the very model
    rank 0 reports and saves. Without an initialised process group, plain evaluate()."""
    if world_size == 1 or not dist.is_available() or not dist.is_initialized():
        return evaluate(model, digits)
    if len(digits) == 0:
        return float("nan"), float("nan")
    device = model_device(model)
    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)
    x, y = digits.x[rank::world_size], digits.y[rank::world_size]
    sums = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, rows
    if len(y):
        part = Digits(x=x, y=y)
        logits, labels = predict(model, part.images()), part.labels()
        sums[0] = F.cross_entropy(logits, labels, reduction="sum").item()
        sums[1] = (logits.argmax(1) == labels).sum().item()
        sums[2] = len(labels)
    sums = sums.to(device)  # NCCL reduces device tensors only
    dist.all_reduce(sums)
    loss, correct, rows = sums.tolist()
    return loss / rows, correct / rows


def input_batch(digits: Digits, idx: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (B, 1, 28, 28) float in [0, 1], labels) for these rows, on `device`.

    Only the batch's rows are gathered and converted: the set itself stays the uint8 array it came
    as (on a Ray worker, read-only shared memory of the object store, no copy per worker)."""
    images = torch.from_numpy(digits.x[idx]).unsqueeze(1)
    labels = torch.from_numpy(digits.y[idx])
    return to_device(images, device).float().div_(255.0), to_device(labels, device)


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
    threads: int = 1,
    device: torch.device | None = None,
    wrap_model: Callable[[nn.Module], nn.Module] = lambda m: m,
    on_epoch: EpochCallback | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> nn.Module:
    """Train `params.train.epochs` epochs; with world_size > 1, this rank takes its share of every batch.

    All ranks draw the same seeded permutation and take every world_size-th sample of it, so the
    global batch (params.train.batch_size) and the number of steps are the same for any world size.
    `threads`: torch's intra-op threads, as many as the cores this process is given (more would
    oversubscribe them). `device`: where the model and the batches go (default: the CPU).
    `wrap_model`: e.g. Ray Train's prepare_model (DistributedDataParallel across the workers).
    """
    tp = params.train
    device = device or torch.device("cpu")
    torch.set_num_threads(threads)
    torch.manual_seed(tp.seed)
    # torch's optimizers import torch._dynamo on their first step (so does DDP's constructor): seconds
    # on 2 busy cores. Imported here, it counts as set-up, not as the first epoch, on every backend.
    importlib.import_module("torch._dynamo")

    model = wrap_model(build_model(params.model).to(device))
    bare = unwrap(model)

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
        # Summed on the device: one synchronisation per epoch, not one per step.
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for step in range(steps):
            idx = shard[step * local_batch : (step + 1) * local_batch]
            images, labels = input_batch(train, idx, device)
            images = augment_batch(images, params.augment, aug_gen)
            logits = model(images)
            loss = F.cross_entropy(logits, labels, label_smoothing=tp.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == labels).sum()
            if progress is not None:
                progress(step + 1, steps)
        val_loss, val_acc = evaluate_across_ranks(bare, val, rank, world_size)
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=loss_sum.item() / len(shard),
            train_accuracy=correct.item() / len(shard),
            val_loss=val_loss,
            val_accuracy=val_acc,
            lr=float(scheduler.get_last_lr()[0]),
            seconds=time.perf_counter() - start,
        )
        if on_epoch is not None:
            on_epoch(metrics, bare)
    bare.eval()
    return bare
