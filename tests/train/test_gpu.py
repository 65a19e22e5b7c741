"""`train.use_gpu: true`: a clear error where there is no CUDA GPU; on a CUDA machine, training on the
GPU (plain loop and Ray Train) with a checkpoint that loads on the CPU, as the server loads it.

Here (no GPU) the CUDA tests skip. On a machine with one:
    source scripts/lib.sh && .guessme/venvs/ml/bin/python -m pytest tests/train/test_gpu.py -v -rs
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from guessme_train import trainer
from guessme_train.augment import augment_batch
from guessme_train.checkpoint import load_model, save_model
from guessme_train.datasets import Digits
from guessme_train.device import NoGPUError, plain_device
from guessme_train.loop import predict
from guessme_train.params import Params, load_params

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
needs_no_cuda = pytest.mark.skipif(CUDA, reason="checks the error on a machine without a GPU")
REPO = Path(__file__).resolve().parents[2]
PARAMS = load_params(REPO / "params.yaml")
AUGMENT = PARAMS.augment


def bars(n: int = 200) -> Digits:
    """Digit d is a bar at row 2d: learnable in an epoch or two."""
    x = np.zeros((n, 28, 28), np.uint8)
    y = np.arange(n) % 10
    for i, d in enumerate(y):
        x[i, 2 * d + 4 : 2 * d + 6, 4:24] = 255
    return Digits(x=x, y=y.astype(np.int64))


def gpu_params(**train: object) -> Params:
    return PARAMS.replace(
        model={"width": 4},
        augment={"enabled": False},
        train={"epochs": 3, "batch_size": 20, "lr": 0.01, "use_gpu": True, **train},
    )


@pytest.mark.unit
@needs_no_cuda
def test_plain_loop_with_use_gpu_and_no_gpu_is_a_clear_error() -> None:
    with pytest.raises(NoGPUError, match=r"train\.use_gpu is true but this machine has no CUDA GPU"):
        plain_device(True)
    with pytest.raises(NoGPUError, match=r"set `train\.use_gpu: false`"):
        trainer.train_plain(gpu_params(backend="plain"), bars(), bars(), progress=False)
    assert plain_device(False) == torch.device("cpu")


@pytest.mark.unit
@needs_no_cuda
def test_train_stage_with_use_gpu_and_no_gpu_stops_with_the_error_and_keeps_the_old_model(
    tmp_path: Path,
) -> None:
    from guessme_train import train
    from guessme_train.datasets import save_digits

    params = tmp_path / "params.yaml"
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"] |= {"use_gpu": True, "backend": "plain"}
    params.write_text(yaml.safe_dump(raw))
    for split in ("train", "val"):
        save_digits(tmp_path / "data" / f"{split}.npz", bars(20))
    model = tmp_path / "model.pt"
    model.write_bytes(b"the previous run's model")
    argv = ["--params", str(params), "--data", str(tmp_path / "data"), "--model", str(model)]
    with pytest.raises(SystemExit, match=r"^\[train\] error: train\.use_gpu is true but this machine has no"):
        train.main([*argv, "--history", str(tmp_path / "history.json")])
    assert model.read_bytes() == b"the previous run's model"
    assert not (tmp_path / "history.json").exists()


@pytest.mark.unit
def test_ray_run_with_use_gpu_on_a_cluster_short_of_gpus_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 4.0, "GPU": 1.0})
    with pytest.raises(NoGPUError, match=r"the Ray cluster \(1 GPUs for 2 workers\)"):
        trainer._check_cluster_gpus(gpu_params(num_workers=2))
    trainer._check_cluster_gpus(gpu_params(num_workers=1))  # enough
    trainer._check_cluster_gpus(gpu_params(num_workers=4, use_gpu=False))  # not asked for


def assert_cpu_checkpoint_serves(result: trainer.TrainResult, tmp_path: Path, params: Params) -> None:
    assert result.device == "cuda"
    assert all(p.device.type == "cpu" for p in result.model.parameters())
    save_model(tmp_path / "model.pt", result.model, params.model)
    loaded, _ = load_model(tmp_path / "model.pt")  # map_location="cpu", as the server loads it
    images = bars(50).images()
    assert torch.equal(predict(loaded, images), predict(result.model, images))
    assert (predict(loaded, images).argmax(1) == bars(50).labels()).float().mean() > 0.9


@pytest.mark.integration
@needs_cuda
def test_plain_loop_trains_on_the_gpu_and_saves_a_cpu_checkpoint(tmp_path: Path) -> None:
    params = gpu_params(backend="plain")
    result = trainer.train_plain(params, bars(), bars(), progress=False)
    assert_cpu_checkpoint_serves(result, tmp_path, params)


@pytest.mark.integration
@needs_cuda
def test_augmentation_on_the_gpu_matches_the_cpu() -> None:
    images = bars(16).images()
    cpu = augment_batch(images, AUGMENT, torch.Generator().manual_seed(3))
    gpu = augment_batch(images.cuda(), AUGMENT, torch.Generator().manual_seed(3))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)


@pytest.fixture
def gpu_ray() -> Iterator[None]:
    import ray

    from guessme_train.ray_cluster import ensure_local_token

    ensure_local_token()  # a fresh clone has none yet
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=True)
    yield
    ray.shutdown()


@pytest.mark.integration
@needs_cuda
@pytest.mark.timeout(300)
def test_ray_train_worker_trains_on_the_gpu_and_reports_a_cpu_checkpoint(
    tmp_path: Path, gpu_ray: None
) -> None:
    params = gpu_params(backend="ray", num_workers=1)
    result = trainer.train_ray(params, bars(), bars())
    assert_cpu_checkpoint_serves(result, tmp_path, params)
