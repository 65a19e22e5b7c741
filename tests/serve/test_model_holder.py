"""The model swap without Ray: atomic, a failed load keeps the old model, "" means no model."""

import asyncio
import threading

import numpy as np
import pytest

from guessme_contracts.probes import packaged_probes
from guessme_core import strokes_to_image, to_batch
from guessme_serve.model_holder import LoadedModel, ModelHolder, NoModelError, parse_model_uri, probe_score

from .conftest import tiny_model

pytestmark = pytest.mark.unit


def test_parse_model_uri() -> None:
    assert parse_model_uri("models:/guessme-cnn/12") == ("guessme-cnn", "12")
    for bad in ("models:/guessme-cnn@champion", "runs:/abc/model", "models:/guessme-cnn/latest", ""):
        with pytest.raises(ValueError, match="models:/<name>/<version>"):
            parse_model_uri(bad)


def test_load_swap_and_failure_keeps_old_model() -> None:
    def loader(uri: str) -> LoadedModel:
        if uri.endswith("/9"):
            raise OSError("artifact store unreachable")
        return tiny_model(uri.rsplit("/", 1)[1])

    async def scenario() -> None:
        holder = ModelHolder(loader)
        with pytest.raises(NoModelError, match="no model is loaded"):
            holder.require()
        await holder.set_uri("models:/guessme-cnn/1")
        assert holder.require().version == "1"
        await holder.set_uri("models:/guessme-cnn/9")
        assert holder.require().version == "1", "a failed load must keep the old model"
        assert holder.last_error
        assert "artifact store unreachable" in holder.last_error
        assert holder.configured_uri == "models:/guessme-cnn/9"
        await holder.set_uri("models:/guessme-cnn/2")
        assert holder.require().version == "2"
        assert holder.last_error is None
        await holder.set_uri("")
        with pytest.raises(NoModelError):
            holder.require()

    asyncio.run(scenario())


def test_requests_in_flight_finish_on_the_old_model() -> None:
    """A slow load runs off the event loop; requests keep being answered by the old model meanwhile."""
    release = threading.Event()

    def slow_loader(uri: str) -> LoadedModel:
        if uri.endswith("/2"):
            assert release.wait(5)
        return tiny_model(uri.rsplit("/", 1)[1])

    async def scenario() -> None:
        holder = ModelHolder(slow_loader)
        await holder.set_uri("models:/guessme-cnn/1")
        in_flight = holder.require()  # a request took the model before the swap began
        swap = asyncio.create_task(holder.set_uri("models:/guessme-cnn/2"))
        answered = []
        for _ in range(5):  # the loop is free while the new model loads
            await asyncio.sleep(0.01)
            answered.append(holder.require().version)
        assert answered == ["1"] * 5
        release.set()
        await swap
        assert holder.require().version == "2"
        probs = in_flight.probabilities([np.zeros((28, 28), np.float32)])
        assert probs.shape == (1, 10)
        assert in_flight.version == "1"

    asyncio.run(scenario())


def test_same_uri_is_not_reloaded() -> None:
    calls: list[str] = []

    def loader(uri: str) -> LoadedModel:
        calls.append(uri)
        return tiny_model()

    async def scenario() -> None:
        holder = ModelHolder(loader)
        await holder.set_uri("models:/guessme-cnn/1")
        await holder.set_uri("models:/guessme-cnn/1")  # e.g. only the rate limit changed

    asyncio.run(scenario())
    assert calls == ["models:/guessme-cnn/1"]


class _Templates:
    """A model fitted to the probe drawings (each digit's mean rendering, normalised; logits are the
    cosine to each): it reads them, unlike an untrained CNN, and takes seconds less than training one.
    A plain (N, 1, 28, 28) -> (N, 10) callable, as a served model is (LoadedModel.module)."""

    def __init__(self) -> None:
        images = {d: [] for d in range(10)}  # type: dict[int, list[np.ndarray]]
        for probe in packaged_probes():
            images[probe.label].append(strokes_to_image(probe.strokes, probe.width, probe.height))
        means = np.stack([to_batch(images[d]).mean(0).ravel() for d in range(10)])
        self.templates = means / np.linalg.norm(means, axis=1, keepdims=True)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1)
        return (flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)) @ self.templates.T


def test_a_model_that_fails_the_probe_set_is_refused_and_the_old_one_keeps_serving() -> None:
    """The gate before the swap: the untrained candidate loads fine but reads few drawings, so it is
    refused with the probe summary as the load error (what the sync reports as Degraded)."""
    good = LoadedModel("models:/guessme-cnn/1", "1", _Templates(), "t", {})

    def loader(uri: str) -> LoadedModel:
        return good if uri == good.uri else tiny_model(uri.rsplit("/", 1)[1])

    async def scenario() -> None:
        holder = ModelHolder(loader)
        await holder.set_uri(good.uri, probe_min_accuracy=0.8)
        assert holder.last_error is None, holder.last_error
        assert holder.require() is good
        await holder.set_uri("models:/guessme-cnn/2", probe_min_accuracy=0.8)
        assert holder.require() is good, "a model below the probe threshold must not be swapped in"
        assert holder.last_error is not None
        error = holder.last_error.split(" ", 1)[1]  # after the time stamp
        assert error.startswith("loading models:/guessme-cnn/2: ModelRefused: probe set: it recognises ")
        assert "below promote.verify_min_accuracy 80%" in error
        assert "\n" not in error
        assert "2" not in holder.served_versions, "a refused version was never served"
        # Without a threshold (no gate configured) the same candidate is swapped in.
        await holder.set_uri("models:/guessme-cnn/2")
        assert holder.require().version == "2"

    asyncio.run(scenario())


def test_the_probe_score_reads_the_drawings_like_predict() -> None:
    good = LoadedModel("models:/guessme-cnn/1", "1", _Templates(), "t", {})
    verdict = probe_score(good, 0.8)
    assert verdict.passed, verdict.summary()
    assert verdict.total == len(packaged_probes())
    assert not probe_score(tiny_model("2"), 0.8).passed
