"""Run the training loop (guessme_train.loop) either in this process or on Ray Train workers.

`train_ray` is the production path: a Ray Train `TorchTrainer` whose ScalingConfig comes from
params.yaml. It connects to whatever Ray `ray.init()` finds: a local Ray started for the run, or
an existing cluster through RAY_ADDRESS (a RayJob's entrypoint on Kubernetes sets it).
`train_plain` runs the same loop without Ray (tests, benchmark baseline).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from guessme_train.datasets import Digits
from guessme_train.loop import EpochMetrics, build_model, train_model
from guessme_train.params import Params

MODEL_FILE = "model.pt"
HISTORY_FILE = "history.json"
# The data travels to workers through the object store: MNIST needs little of it.
LOCAL_OBJECT_STORE_BYTES = 512 * 1024**2


@dataclass
class TrainResult:
    model: nn.Module  # eval mode, on the CPU
    history: list[EpochMetrics]
    backend: str
    seconds: float  # wall time of the whole call, start-up included

    @property
    def seconds_per_epoch(self) -> float:
        return sum(m.seconds for m in self.history) / max(1, len(self.history))


def _log_epoch(m: EpochMetrics, epochs: int, prefix: str = "") -> None:
    print(
        f"{prefix}epoch {m.epoch}/{epochs}: loss {m.train_loss:.4f}  train acc {m.train_accuracy:.4f}  "
        f"val loss {m.val_loss:.4f}  val acc {m.val_accuracy:.4f}  lr {m.lr:.2e}  {m.seconds:.1f} s",
        flush=True,
    )


def train_plain(params: Params, train: Digits, val: Digits, *, progress: bool = True) -> TrainResult:
    from tqdm import tqdm

    start = time.perf_counter()
    history: list[EpochMetrics] = []
    epochs = params.train.epochs
    bar = tqdm(total=epochs, desc="training (plain)", unit="epoch", disable=not progress, file=sys.stderr)

    def on_epoch(m: EpochMetrics, _model: nn.Module) -> None:
        history.append(m)
        bar.update(1)
        bar.set_postfix(loss=f"{m.train_loss:.3f}", val_acc=f"{m.val_accuracy:.4f}")
        if progress:
            _log_epoch(m, epochs)

    try:
        model = train_model(params, train, val, on_epoch=on_epoch)
    finally:
        bar.close()
    return TrainResult(model.cpu().eval(), history, "plain", time.perf_counter() - start)


def _ray_worker_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker: the shared loop, DDP-wrapped, reporting each epoch."""
    import ray.train
    import ray.train.torch
    from ray.experimental.tqdm_ray import tqdm as ray_tqdm

    params: Params = config["params"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    history: list[dict[str, float]] = []
    bar: list[Any] = []

    def progress(step: int, steps: int) -> None:
        # A live progress bar on the driver (rank 0's batches stand for all workers).
        if rank != 0 or not config["progress_bar"]:
            return
        if step == 1:
            bar.append(ray_tqdm(total=steps, desc=f"epoch {len(history) + 1}/{params.train.epochs}"))
        bar[-1].update(1)
        if step == steps:
            bar[-1].close()

    def on_epoch(m: EpochMetrics, model: nn.Module) -> None:
        history.append(m.as_dict())
        if rank == 0:
            _log_epoch(m, params.train.epochs, prefix="[ray train] ")
        last = m.epoch == params.train.epochs
        if last and rank == 0:
            # Train V2 gives the driver metrics only with a checkpoint: report the model once, at the end.
            with tempfile.TemporaryDirectory() as tmp:
                torch.save(model.state_dict(), Path(tmp) / MODEL_FILE)
                (Path(tmp) / HISTORY_FILE).write_text(json.dumps(history))
                ray.train.report(m.as_dict(), checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(m.as_dict())

    train_model(
        params,
        config["train"],
        config["val"],
        rank=rank,
        world_size=world,
        wrap_model=ray.train.torch.prepare_model,
        on_epoch=on_epoch,
        progress=progress,
    )


def ray_storage_path() -> str:
    """Where Ray Train keeps run results: a folder every worker can reach. Locally the state folder;
    on a multi-node cluster set GUESSME_RAY_STORAGE to shared storage (e.g. s3://bucket/ray)."""
    if os.environ.get("GUESSME_RAY_STORAGE"):
        return os.environ["GUESSME_RAY_STORAGE"]
    return str(Path(os.environ.get("GUESSME_STATE", ".guessme")).resolve() / "ray-results")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connect_ray() -> bool:
    """Join the cluster named by RAY_ADDRESS, or start a private local Ray; True if started here.

    A local Ray is started explicitly (address="local") rather than letting `ray.init()` attach to
    whatever Ray was last started on this machine; its state goes under RAY_TMPDIR.
    """
    import ray

    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS", "")
    if address and address != "local":
        ray.init(address=address, log_to_driver=True)
        return False
    ray.init(
        address="local",
        include_dashboard=True,  # Ray Train's controller reports through it
        dashboard_port=_free_port(),
        object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        log_to_driver=True,
    )
    return True


def train_ray(params: Params, train: Digits, val: Digits) -> TrainResult:
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    start = time.perf_counter()
    started_here = connect_ray()
    try:
        trainer = TorchTrainer(
            _ray_worker_loop,
            train_loop_config={
                "params": params,
                "train": train,
                "val": val,
                # Live bars only for a terminal; logs get the per-epoch lines.
                "progress_bar": sys.stderr.isatty(),
            },
            scaling_config=ScalingConfig(
                num_workers=params.train.num_workers,
                use_gpu=params.train.use_gpu,
                resources_per_worker={"CPU": 1},
            ),
            # A fresh name per run: reusing one merges the old run's checkpoints into the new result.
            run_config=RunConfig(
                name=f"guessme-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
                storage_path=ray_storage_path(),
            ),
        )
        result = trainer.fit()
        if result.checkpoint is None:
            raise RuntimeError(f"Ray Train finished without a checkpoint (error: {result.error})")
        with result.checkpoint.as_directory() as ckpt:
            state = torch.load(Path(ckpt) / MODEL_FILE, map_location="cpu", weights_only=True)
            history = [
                EpochMetrics(**{**m, "epoch": int(m["epoch"])})
                for m in json.loads((Path(ckpt) / HISTORY_FILE).read_text())
            ]
    finally:
        if started_here:
            ray.shutdown()
    model = build_model(params.model)
    model.load_state_dict(state)
    return TrainResult(model.eval(), history, "ray", time.perf_counter() - start)


def run_training(params: Params, train: Digits, val: Digits) -> TrainResult:
    if params.train.backend == "ray":
        return train_ray(params, train, val)
    if params.train.backend == "plain":
        return train_plain(params, train, val)
    raise ValueError(f"unknown train.backend {params.train.backend!r}: use 'ray' or 'plain'")
