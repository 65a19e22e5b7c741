"""The Ray Train trainer guessme_train.trainer builds: Ray's TorchTrainer less the helper actors a run
that passes no Ray Datasets has no use for (each one more process in the start-up)."""

from __future__ import annotations

import pytest
from ray.train import ScalingConfig
from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

from guessme_train.trainer import lean_torch_trainer

pytestmark = pytest.mark.unit


def callback_types(trainer_class: type) -> list[type]:
    trainer = trainer_class(lambda: None, scaling_config=ScalingConfig(num_workers=1))
    return [type(cb) for cb in trainer._create_default_callbacks()]


def test_lean_trainer_drops_only_the_dataset_manager_and_the_placement_group_cleaner() -> None:
    stock, lean = callback_types(TorchTrainer), callback_types(lean_torch_trainer())
    dropped = {DatasetsCallback, PlacementGroupCleanerCallback}
    assert dropped <= set(stock)  # Ray still adds them: if not, this trim has nothing left to do
    assert lean == [t for t in stock if t not in dropped]  # the rest (backend, accelerators...) kept
    assert issubclass(lean_torch_trainer(), TorchTrainer)
