"""Helpers shared by the serving tests: a tiny in-process model (the plumbing, not accuracy)."""

from __future__ import annotations

import torch

from guessme_core import GuessmeCNN
from guessme_serve.model_holder import LoadedModel


def tiny_model(version: str = "1", seed: int = 0) -> LoadedModel:
    """An untrained GuessmeCNN wrapped like a registry load: for tests of the plumbing, not accuracy."""
    torch.manual_seed(seed)
    module = GuessmeCNN(width=4).eval()
    return LoadedModel(f"models:/guessme-cnn/{version}", version, module, "2026-01-01T00:00:00+00:00", {})
