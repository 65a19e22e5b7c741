"""Helpers shared by the serving tests: a tiny in-process model (the plumbing, not accuracy)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from guessme_core import GuessmeCNN
from guessme_core.onnx_export import onnx_copy
from guessme_core.onnx_model import OnnxModel
from guessme_serve.api import bind_service, create_api
from guessme_serve.model_holder import LoadedModel, ModelHolder
from guessme_serve.rounds import RoundStore
from guessme_serve.service import GuessmeService
from guessme_serve.tickets import TicketSigner


def tiny_cnn(seed: int = 0) -> torch.nn.Module:
    """An untrained, seeded GuessmeCNN of width 4, in inference mode: the plumbing tests' model."""
    torch.manual_seed(seed)
    return GuessmeCNN(width=4).eval()


@functools.cache
def tiny_onnx(seed: int = 0) -> bytes:
    """tiny_cnn(seed)'s checked ONNX copy (exported once per seed and test process: ~3 s)."""
    return onnx_copy(tiny_cnn(seed), f"the tiny test CNN (seed {seed})")


def tiny_model(version: str = "1", seed: int = 0) -> LoadedModel:
    """An untrained GuessmeCNN in its served form (ONNX Runtime), wrapped like a registry load: for tests
    of the plumbing, not accuracy."""
    module = OnnxModel(tiny_onnx(seed))
    return LoadedModel(f"models:/guessme-cnn/{version}", version, module, "2026-01-01T00:00:00+00:00", {})


def tiny_service(folder: Path, version: str = "3") -> GuessmeService:
    """A GuessmeService serving tiny_model(version), its player data in `folder`, a fixed ticket key."""
    svc = GuessmeService(
        ModelHolder(lambda uri: tiny_model()), RoundStore(folder / "player"), TicketSigner(b"k" * 32)
    )
    svc.holder.current = tiny_model(version)
    svc.holder.configured_uri = f"models:/guessme-cnn/{version}"
    return svc


@pytest.fixture
def service(tmp_path: Path) -> GuessmeService:
    """tiny_service, serving version 3."""
    return tiny_service(tmp_path)


@pytest.fixture
def client(service: GuessmeService, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    monkeypatch.setenv("GUESSME_FRONTEND_DIST", str(tmp_path / "no-dist"))
    """The app's REST API and WebSocket in-process, bound to `service` (no front-end build)."""
    bind_service(service)
    with TestClient(create_api()) as c:
        yield c


API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_ws_codes() -> set[str]:
    """The WebSocket error codes docs/api.md documents (its `| code | meaning |` table)."""
    table = API_DOC.read_text().split("| code | meaning |", 1)[1].split("\n\n", 1)[0]
    codes = set(re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE))
    assert "invalid_json" in codes, f"no WebSocket error code table found in {API_DOC}"
    return codes
