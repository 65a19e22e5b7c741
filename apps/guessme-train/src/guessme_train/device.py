"""Where training runs: the CPU, or a CUDA GPU when params.yaml says `train.use_gpu: true`.

There is no silent fallback: a run asked to use a GPU that finds none stops with a clear error
instead of training for hours on the CPU.
"""

from __future__ import annotations

import torch


class NoGPUError(RuntimeError):
    """train.use_gpu is true but no CUDA device can be used."""


def no_gpu_message(where: str) -> str:
    return (
        f"train.use_gpu is true but {where} has no CUDA GPU (torch {torch.__version__}, "
        f"torch.cuda.is_available() is {torch.cuda.is_available()}): set `train.use_gpu: false` in "
        "params.yaml, or run on a machine (Ray cluster) with NVIDIA GPUs and a CUDA build of torch"
    )


def plain_device(use_gpu: bool) -> torch.device:
    """The plain loop's device: cuda:0 when asked for (and present), else the CPU."""
    if not use_gpu:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise NoGPUError(no_gpu_message("this machine"))
    return torch.device("cuda", 0)


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch on `device`; to a GPU through pinned memory, so the copy runs asynchronously."""
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)
