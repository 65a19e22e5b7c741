"""The held-out pass of a Ray Train run, shared between the ranks (guessme_train.loop.evaluate_across_ranks):
two real processes in a gloo group, as Ray Train's workers are, must report exactly what rank 0's
model scores on the whole set in one process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from guessme_train.datasets import Digits
from guessme_train.loop import build_model, evaluate, evaluate_across_ranks
from guessme_train.params import ModelParams

pytestmark = pytest.mark.integration  # two processes and a gloo process group, ~5 s

MODEL = ModelParams(width=4, dropout=0.0)


def digits(n: int = 51) -> Digits:  # odd: the ranks' shares differ by one row
    rng = np.random.default_rng(1)
    return Digits(
        x=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, n).astype(np.int64)
    )


def rank0_model() -> torch.nn.Module:
    """Seeded weights; BatchNorm running statistics that differ from the defaults."""
    torch.manual_seed(0)
    model = build_model(MODEL)
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 1, 28, 28))
    return model


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        model = rank0_model()
        if rank == 1:  # as after training: this rank's statistics came from its own last batch
            with torch.no_grad():
                model.train()
                model(torch.rand(16, 1, 28, 28) * 3)
        torch.save(evaluate_across_ranks(model, digits(), rank, 2), f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ranks_share_the_held_out_pass_and_report_rank_0s_model(tmp_path: Path) -> None:
    mp.spawn(_rank, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    whole = evaluate(rank0_model(), digits())
    for rank in (0, 1):
        loss, accuracy = torch.load(tmp_path / f"rank{rank}.pt")
        assert loss == pytest.approx(whole[0], rel=1e-5)
        assert accuracy == pytest.approx(whole[1], abs=1e-6)  # float32 mean vs float64 sums


def test_without_a_process_group_it_is_the_plain_pass() -> None:
    assert not dist.is_initialized()
    model = rank0_model()
    assert evaluate_across_ranks(model, digits(), 1, 2) == evaluate(model, digits())
