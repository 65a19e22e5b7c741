"""The model swap without Ray: atomic, a failed load keeps the old model, "" means no model."""

import asyncio
import threading

import numpy as np
import pytest

from guessme_serve.model_holder import LoadedModel, ModelHolder, NoModelError, parse_model_uri

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
