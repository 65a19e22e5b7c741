"""Run the training loop (guessme_train.loop) either in this process or on Ray Train workers.

`train_ray` is the production path: a Ray Train `TorchTrainer` whose ScalingConfig comes from
params.yaml, on the cluster guessme_train.ray_cluster chooses (RAY_ADDRESS's, a running `make up`'s,
or a private local Ray). `train_plain` runs the same loop without Ray, on the same number of cores.
Both record where the time outside the epochs went (`TrainResult.phases`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from guessme_train.datasets import Digits
from guessme_train.device import NoGPUError, no_gpu_message, plain_device
from guessme_train.loop import EpochMetrics, build_model, train_model
from guessme_train.params import Params

MODEL_FILE = "model.pt"
HISTORY_FILE = "history.json"
TIMES_FILE = "times.json"
# Ray Train settings for a short run on few cores, each overridable in the environment:
RAY_TRAIN_ENV = {
    # The controller polls the workers this often; its default, 2 s, can leave the finished run
    # waiting up to 2 s for its next poll.
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5",
    # The preemption watcher is one more actor process per run (a Python start on busy cores), for
    # drained spot nodes, which neither a local Ray nor the one-node training RayJob has.
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    # Read by the driver: Ray Train's Prometheus metrics callbacks on the controller and every worker,
    # run at every report. The run logs its own per-epoch figures and where its time went.
    "RAY_TRAIN_METRICS_ENABLED": "0",
}


@dataclass
class TrainResult:
    model: nn.Module  # eval mode, on the CPU
    history: list[EpochMetrics]
    backend: str
    seconds: float  # wall time of the whole call, start-up included
    workers: int = 1
    threads: int = 1  # torch threads per worker (the plain loop: its one process)
    device: str = "cpu"
    # Seconds outside the epochs, by phase, in order (start-up and wind-down).
    phases: dict[str, float] = field(default_factory=dict)
    startup: float = 0.0  # seconds from the call until the first epoch began

    @property
    def epoch_seconds(self) -> float:
        return sum(m.seconds for m in self.history)

    @property
    def seconds_per_epoch(self) -> float:
        return self.epoch_seconds / max(1, len(self.history))

    @property
    def overhead_seconds(self) -> float:
        """Everything but the epochs: start-up, data transfer, checkpoints, shutdown."""
        return self.seconds - self.epoch_seconds


def format_phases(phases: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items())


def _log_epoch(m: EpochMetrics, epochs: int, prefix: str = "") -> None:
    print(
        f"{prefix}epoch {m.epoch}/{epochs}: loss {m.train_loss:.4f}  train acc {m.train_accuracy:.4f}  "
        f"val loss {m.val_loss:.4f}  val acc {m.val_accuracy:.4f}  lr {m.lr:.2e}  {m.seconds:.1f} s",
        flush=True,
    )


def train_plain(params: Params, train: Digits, val: Digits, *, progress: bool = True) -> TrainResult:
    """The loop in this process, with num_workers x cpus_per_worker torch threads: the cores a Ray
    run with the same params would take."""
    from tqdm import tqdm

    start = time.perf_counter()
    device = plain_device(params.train.use_gpu)
    threads = params.train.plain_threads
    history: list[EpochMetrics] = []
    epochs = params.train.epochs
    bar = tqdm(total=epochs, desc="training (plain)", unit="epoch", disable=not progress, file=sys.stderr)

    first_epoch_start = start

    def on_epoch(m: EpochMetrics, _model: nn.Module) -> None:
        nonlocal first_epoch_start
        if not history:
            first_epoch_start = time.perf_counter() - m.seconds
        history.append(m)
        bar.update(1)
        bar.set_postfix(loss=f"{m.train_loss:.3f}", val_acc=f"{m.val_accuracy:.4f}")
        if progress:
            _log_epoch(m, epochs)

    try:
        model = train_model(params, train, val, threads=threads, device=device, on_epoch=on_epoch)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    startup = first_epoch_start - start
    phases = {
        "set-up (model, torch imports)": startup,
        "wind-down": seconds - startup - sum(m.seconds for m in history),
    }
    return TrainResult(
        model.cpu().eval(), history, "plain", seconds, 1, threads, device.type, phases, startup
    )


def _ray_worker_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker: the shared loop, DDP-wrapped, reporting each epoch."""
    entered = time.time()  # wall clock: the driver compares it with its own
    import ray
    import ray.train
    import ray.train.torch
    from ray.experimental.tqdm_ray import tqdm as ray_tqdm

    params: Params = config["params"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    # As many torch threads as the CPUs Ray reserved for this worker: no oversubscription.
    threads = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)))
    device = ray.train.torch.get_device()
    if params.train.use_gpu and device.type != "cuda":
        raise NoGPUError(no_gpu_message(f"Ray Train worker {rank}"))
    # One copy of the data per node, in the object store; the arrays map its shared memory, read-only.
    train, val = ray.get([config["train"], config["val"]])
    times: dict[str, float] = {"entered": entered, "data": time.time()}
    age = process_age()
    if age is not None:  # when this worker's process began: splits the worker group's start
        times["process_start"] = entered - age
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
        if m.epoch == 1:
            times["first_epoch_start"] = time.time() - m.seconds
        history.append(m.as_dict())
        if rank == 0:
            _log_epoch(m, params.train.epochs, prefix="[ray train] ")
        last = m.epoch == params.train.epochs
        if last and rank == 0:
            times["last_epoch_end"] = time.time()
            # Train V2 gives the driver metrics only with a checkpoint: report the model once, at the
            # end, with CPU tensors (the driver and the server load it without a GPU).
            with tempfile.TemporaryDirectory() as tmp:
                cpu_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
                torch.save(cpu_state, Path(tmp) / MODEL_FILE)
                (Path(tmp) / HISTORY_FILE).write_text(json.dumps(history))
                info = {**times, "threads": threads, "device": device.type}
                (Path(tmp) / TIMES_FILE).write_text(json.dumps(info))
                ray.train.report(m.as_dict(), checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(m.as_dict())

    train_model(
        params,
        train,
        val,
        rank=rank,
        world_size=world,
        threads=threads,
        device=device,
        wrap_model=ray.train.torch.prepare_model,  # to the worker's device; DDP across the workers
        on_epoch=on_epoch,
        progress=progress,
    )


def _check_cluster_gpus(params: Params) -> None:
    """use_gpu on a cluster without enough GPUs would wait for them forever: fail now instead."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0.0)
    if params.train.use_gpu and gpus < params.train.num_workers:
        where = f"the Ray cluster ({gpus:g} GPUs for {params.train.num_workers} workers)"
        raise NoGPUError(no_gpu_message(where))


def lean_torch_trainer() -> type:
    """Ray Train's TorchTrainer less two helper actors that this run has no use for, each one more
    process in the start-up (Python, Ray and Ray Train imports: 1.5-2 s of CPU each on 2 cores, where
    the controller and the workers start at the same time), from Ray 2.60's
    DataParallelTrainer._create_default_callbacks (ray/train/v2/api/data_parallel_trainer.py):

    - DatasetsCallback starts a DatasetManager actor for Ray Data `datasets`, even when none are
      given; the data here comes through the object store (train_loop_config), so no worker asks it
      for a shard (`dataset_shard_provider` is optional in the workers' train context).
    - PlacementGroupCleanerCallback starts a detached actor that removes the workers' placement group
      if the controller dies ungracefully. That group is not detached, so Ray removes it with its
      creator anyway (ray/util/placement_group.py, `lifetime`), and a training run is its own job
      (the stage, the RayJob), which ends with it.
    """
    from ray.train.v2._internal.callbacks import DatasetsCallback
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
    from ray.train.v2.torch.torch_trainer import TorchTrainer  # what ray.train.torch gives with Train V2 on

    unused = (DatasetsCallback, PlacementGroupCleanerCallback)

    class LeanTorchTrainer(TorchTrainer):
        def _create_default_callbacks(self) -> list[Any]:
            return [cb for cb in super()._create_default_callbacks() if not isinstance(cb, unused)]

    return LeanTorchTrainer


class _Phases:
    """Consecutive phases of a run, timed from one mark to the next."""

    def __init__(self) -> None:
        self.start = self.mark = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def end(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.mark
        self.mark = now


def _split_fit(
    fit_seconds: float, fit_start: float, times: dict[str, Any], epochs: float
) -> dict[str, float]:
    """trainer.fit()'s wall time outside the epochs, split by rank 0's timestamps (wall clock:
    the same host, or NTP-synchronised nodes)."""
    keys = ("entered", "data", "first_epoch_start", "last_epoch_end")
    entered, data, first, last = (float(times[k]) for k in keys)
    if "process_start" in times:
        spawned = float(times["process_start"])
        parts = {
            # The controller actor's process and imports, the placement group, the worker's spawn.
            "controller start, worker process launch": spawned - fit_start,
            # Python and Ray in the new process, torch (Ray's TorchConfig), the gloo process group.
            "worker process start-up": entered - spawned,
        }
    else:
        parts = {"worker group start": entered - fit_start}
    parts |= {
        "data from the object store": data - entered,
        "model set-up": first - data,
        "reports between epochs": (last - first) - epochs,
    }
    parts["checkpoint and worker shutdown"] = fit_seconds - epochs - sum(parts.values())
    return parts


def train_ray(params: Params, train: Digits, val: Digits) -> TrainResult:
    from guessme_train import ray_cluster

    tp = params.train
    phases = _Phases()
    connection = ray_cluster.connect()  # first: it may set Ray's auth settings, read when Ray loads

    import ray
    from ray.train import RunConfig, ScalingConfig

    trainer_class = lean_torch_trainer()  # imports ray.train.torch
    print(f"[ray train] cluster: {connection.how}", flush=True)
    phases.end("connect to Ray, import Ray Train")
    try:
        _check_cluster_gpus(params)
        refs = {"train": ray.put(train), "val": ray.put(val)}
        phases.end("data into the object store")
        for name, value in RAY_TRAIN_ENV.items():
            os.environ.setdefault(name, value)  # Ray Train passes them on to its controller and workers
        trainer = trainer_class(
            _ray_worker_loop,
            train_loop_config={
                "params": params,
                **refs,
                # Live bars only for a terminal; logs get the per-epoch lines.
                "progress_bar": sys.stderr.isatty(),
            },
            scaling_config=ScalingConfig(
                num_workers=tp.num_workers,
                use_gpu=tp.use_gpu,
                resources_per_worker={"CPU": tp.cpus_per_worker},
            ),
            # A fresh name per run: reusing one merges the old run's checkpoints into the new result.
            run_config=RunConfig(
                name=f"guessme-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
                storage_path=ray_cluster.storage_path(),
            ),
        )
        phases.end("trainer set-up")
        before_fit = phases.mark - phases.start
        fit_start = time.time()
        result = trainer.fit()
        fit_seconds = time.perf_counter() - phases.mark
        phases.mark = time.perf_counter()
        if result.checkpoint is None:
            raise RuntimeError(f"Ray Train finished without a checkpoint (error: {result.error})")
        with result.checkpoint.as_directory() as ckpt:
            state = torch.load(Path(ckpt) / MODEL_FILE, map_location="cpu", weights_only=True)
            history = [
                EpochMetrics(**{**m, "epoch": int(m["epoch"])})
                for m in json.loads((Path(ckpt) / HISTORY_FILE).read_text())
            ]
            times = json.loads((Path(ckpt) / TIMES_FILE).read_text())
        epochs = sum(m.seconds for m in history)
        phases.seconds.update(_split_fit(fit_seconds, fit_start, times, epochs))
        phases.end("checkpoint load")
    finally:
        if connection.started_here:
            ray.shutdown()
            phases.end("Ray shutdown")
    model = build_model(params.model)
    model.load_state_dict(state)
    seconds = time.perf_counter() - phases.start
    return TrainResult(
        model.eval(), history, "ray", seconds, tp.num_workers, int(times["threads"]), str(times["device"]),
        phases.seconds, before_fit + float(times["first_epoch_start"]) - fit_start,
    )  # fmt: skip


def run_training(params: Params, train: Digits, val: Digits) -> TrainResult:
    if params.train.backend == "ray":
        return train_ray(params, train, val)
    if params.train.backend == "plain":
        return train_plain(params, train, val)
    raise ValueError(f"unknown train.backend {params.train.backend!r}: use 'ray' or 'plain'")


def scale_line(result: TrainResult) -> str:
    """The one line a cluster run's log needs to compare scales: workers, threads, device, speed."""
    return (
        f"[train] {result.backend}: {result.workers} worker(s) x {result.threads} torch thread(s) on "
        f"{result.device}: {result.seconds_per_epoch:.2f} s per epoch over {len(result.history)} epochs, "
        f"{result.overhead_seconds:.1f} s outside the epochs"
    )


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc), or None where that cannot be read."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after the command name
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
