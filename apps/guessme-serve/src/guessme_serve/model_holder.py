"""The served model: loaded from the MLflow registry, swapped atomically on reconfigure.

Loading a version reads the registry over its REST API (guessme_serve.registry_rest: no MLflow
import in the replica) and the version's ONNX copy, which registration stored and checked against
the pt2 model (guessme_core.onnx_export), through the tracking server's artifact proxy: a few HTTP
requests and an ONNX Runtime session, well under a second, and no torch in the replica
(guessme_core.onnx_model). A version registered without such a copy (before registration made
one) is converted by a short-lived child interpreter instead (guessme_serve.registry_child: MLflow,
torch and the ONNX exporter, seconds).

A request reads `holder.current` once and uses that object to the end, so a swap never
changes the model under a request in flight; the old model is dropped when the last such
request finishes. A failed load keeps the old model and records the error; so does a candidate that
fails the probe set (guessme_contracts.probes), scored in-process before the swap when the deployment
sets a threshold, so a model that loads but cannot read digits never reaches a player.
"""

import asyncio
import logging
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from guessme_contracts.model_uri import ModelRef
from guessme_contracts.probes import ProbeScore, packaged_probes, score
from guessme_core import IMAGE_SIZE, NUM_CLASSES, strokes_to_image, to_batch
from guessme_core.onnx_model import ONNX_ARTIFACT, ONNX_FILE, OnnxModel, softmax
from guessme_serve.registry_rest import RegistryRest

MAX_SERVED_VERSIONS = 16


class NoModelError(RuntimeError):
    """No model is configured or loaded yet."""


class ModelRefused(RuntimeError):
    """The candidate loaded but fails the probe set: the message is the probe summary."""


@dataclass(frozen=True)
class LoadedModel:
    uri: str
    version: str
    module: Callable[[np.ndarray], np.ndarray]  # (N, 1, 28, 28) float32 images -> (N, 10) logits
    loaded_at: str
    metrics: dict[str, float]

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """Normalised 28x28 images -> (N, 10) class probabilities."""
        return softmax(self.module(to_batch(images)))


def parse_model_uri(uri: str) -> tuple[str, str]:
    """`models:/name/N` -> (name, "N"), by the one model-URI grammar (guessme_contracts.model_uri):
    deployments name immutable versions, never aliases. A bad URI raises ModelUriError (a ValueError)."""
    model = ModelRef.parse(uri)
    return model.name, str(model.version)


LOAD_TIMEOUT_S = 600.0

log = logging.getLogger(__name__)


def load_from_registry(uri: str) -> LoadedModel:
    """Load a registered version with its logged metrics; check it answers before it serves.

    A missing or unready version fails at the first request, before any model is read. The
    version's stored ONNX copy is loaded directly; without one, registry_child makes one.
    """
    started = time.perf_counter()
    ref = ModelRef.parse(uri)
    registry = RegistryRest.from_env()
    record = registry.version(ref)
    data = registry.artifact(record, ONNX_ARTIFACT)
    if data is not None:
        module, source = load_onnx(data, uri), f"its stored {ONNX_ARTIFACT}"
    else:
        module, source = load_through_child(uri), "registry_child (no stored ONNX copy)"
    check_model(module)
    loaded = LoadedModel(uri, str(ref.version), module, _now(), registry.metrics(record))
    log.info("loaded %s from %s in %.2f s", uri, source, time.perf_counter() - started)
    return loaded


def load_onnx(data: bytes, uri: str) -> OnnxModel:
    """An ONNX file's bytes -> the model; a file that is not one fails with a one-line reason."""
    try:
        return OnnxModel(data)
    except ValueError as exc:
        raise ValueError(f"the ONNX copy of {uri} ({ONNX_ARTIFACT}) does not load: {exc}") from None


def load_through_child(uri: str) -> OnnxModel:
    """The fallback: MLflow, torch and the ONNX exporter run in a child process (registry_child),
    which writes a checked ONNX copy; this process imports none of them."""
    with tempfile.TemporaryDirectory(prefix="guessme-model-") as tmp:
        cmd = [sys.executable, "-m", "guessme_serve.registry_child", uri, tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=LOAD_TIMEOUT_S, check=False)
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise RuntimeError(lines[-1] if lines else f"loader exited with {done.returncode}")
        return load_onnx((Path(tmp) / ONNX_FILE).read_bytes(), uri)


def check_model(module: Callable[[np.ndarray], np.ndarray]) -> None:
    """A forward pass on a small batch: a broken model fails here, not on a player's request."""
    out = np.asarray(module(np.zeros((2, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)))
    if out.shape != (2, NUM_CLASSES):
        raise ValueError(f"model answers shape {out.shape}, expected (2, {NUM_CLASSES})")


def probe_score(model: LoadedModel, min_accuracy: float) -> ProbeScore:
    """The packaged probe set scored on `model` in-process: the same preprocessing and forward pass
    as /predict (guessme_serve.service), without the HTTP round trip."""

    def predict(drawing: dict[str, Any]) -> Mapping[str, Any]:
        image = strokes_to_image(drawing["strokes"], drawing["width"], drawing["height"])
        return {"model_uri": model.uri, "digit": int(model.probabilities([image])[0].argmax())}

    return score(predict, model.uri, packaged_probes(), min_accuracy)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ModelHolder:
    """Owns the served model and its configuration; `set_uri` is what `reconfigure()` calls."""

    def __init__(self, loader: Callable[[str], LoadedModel] = load_from_registry) -> None:
        self._loader = loader
        self._lock = asyncio.Lock()
        self.current: LoadedModel | None = None
        self.configured_uri = ""
        self.last_error: str | None = None
        # The versions this replica has served (newest last, bounded): a round may only name one of them.
        self.served_versions: deque[str] = deque(maxlen=MAX_SERVED_VERSIONS)

    async def set_uri(self, uri: str, probe_min_accuracy: float | None = None) -> None:
        """Load `uri` and swap it in; with `probe_min_accuracy`, only if it passes the probe set."""
        async with self._lock:  # one load at a time; the last configuration wins
            self.configured_uri = uri
            if uri == "":
                self.current, self.last_error = None, None
                return
            if self.current is not None and self.current.uri == uri:
                self.last_error = None
                return
            try:
                # In a thread: the replica keeps answering on the old model while this loads.
                loaded = await asyncio.to_thread(self._loader, uri)
                if probe_min_accuracy is not None:
                    verdict = await asyncio.to_thread(probe_score, loaded, probe_min_accuracy)
                    if not verdict.passed:
                        raise ModelRefused(verdict.summary())
            except Exception as exc:  # any failure: keep serving what we have
                self.last_error = f"{_now()} loading {uri}: {type(exc).__name__}: {exc}"
                return
            self.current, self.last_error = loaded, None  # the swap: one reference assignment
            self.remember(loaded)

    def remember(self, model: LoadedModel) -> None:
        if model.version in self.served_versions:
            self.served_versions.remove(model.version)
        self.served_versions.append(model.version)

    def require(self) -> LoadedModel:
        model = self.current
        if model is None:
            reason = f" (last load error: {self.last_error})" if self.last_error else ""
            raise NoModelError(
                "no model is loaded yet: the deployment's model_uri is empty or failed to load" + reason
            )
        return model
