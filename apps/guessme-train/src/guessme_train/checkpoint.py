"""The trained-model file the train stage writes and the evaluate/register stages read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from guessme_train.loop import build_model
from guessme_train.params import ModelParams


def save_model(path: Path, model: nn.Module, params: ModelParams) -> None:
    """Weights plus the architecture's params, so the file alone rebuilds the model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model_params": dataclasses.asdict(params), "state_dict": model.state_dict()}, tmp)
    tmp.replace(path)


def load_model(path: Path) -> tuple[nn.Module, ModelParams]:
    """(model in eval mode, its params); weights_only: the file cannot run code."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    params = ModelParams(**saved["model_params"])
    model = build_model(params)
    model.load_state_dict(saved["state_dict"])
    return model.eval(), params
