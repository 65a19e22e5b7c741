"""The serving logic without Ray: predict, WebSocket messages, model info, player rounds.

The Ray Serve deployment (app.py) owns one GuessmeService per replica; the benchmark runs the
same service under plain uvicorn to measure what Ray Serve adds.
"""

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from guessme_core import PreprocessingError, pixels_to_image, strokes_to_image
from guessme_serve.json_input import JSONNestingError, parse_json
from guessme_serve.load_gauge import LoadGauge
from guessme_serve.micro_batch import MicroBatcher
from guessme_serve.model_holder import (
    LoadedModel,
    ModelHolder,
    NoModelError,
    load_from_registry,
    parse_model_uri,
)
from guessme_serve.rounds import RoundStore, default_rounds_path
from guessme_serve.schemas import (
    Drawing,
    ModelInfo,
    Prediction,
    RoundCreated,
    RoundIn,
    RoundStats,
    WsError,
    WsPrediction,
    describe,
)

log = logging.getLogger("guessme_serve")

MAX_WS_MESSAGE_CHARS = 1 << 20  # a 10,000-point drawing is ~200 kB; anything near 1 MiB is abuse
MAX_ID_CHARS = 200


@dataclass(frozen=True)
class Settings:
    """Tunables from the deployment's user_config (besides model_uri)."""

    ws_rate_per_s: float = 50.0  # sustained messages per second per connection
    ws_burst: float = 100.0

    @classmethod
    def from_user_config(cls, config: dict[str, Any]) -> "Settings":
        known = {k: float(config[k]) for k in ("ws_rate_per_s", "ws_burst") if k in config}
        return cls(**known)


def to_image(drawing: Drawing) -> np.ndarray:
    """The shared preprocessing: never re-implemented here."""
    if drawing.pixels is not None:
        return pixels_to_image(drawing.pixels)
    assert drawing.width is not None
    assert drawing.height is not None
    return strokes_to_image(drawing.strokes, drawing.width, drawing.height)


class GuessmeService:
    def __init__(self, holder: ModelHolder | None = None, rounds: RoundStore | None = None) -> None:
        self.holder = holder or ModelHolder(load_from_registry)
        self.rounds = rounds or RoundStore(default_rounds_path())
        self.settings = Settings()
        self.batcher: MicroBatcher[LoadedModel, np.ndarray, np.ndarray] = MicroBatcher(_forward)
        self.load = LoadGauge()  # predictions in flight: what the autoscaler scales on

    async def configure(self, user_config: dict[str, Any]) -> None:
        """What `reconfigure()` does: new settings at once, then the (possibly slow) model swap."""
        self.settings = Settings.from_user_config(user_config)
        await self.holder.set_uri(str(user_config.get("model_uri") or ""))

    # -- predictions ---------------------------------------------------------------------------
    def predict(self, drawing: Drawing) -> Prediction:
        """Raises PreprocessingError (bad drawing) or NoModelError (nothing to answer with)."""
        model = self.holder.require()  # read once: a concurrent swap does not affect this request
        image = to_image(drawing)
        return _prediction(model, model.probabilities([image])[0])

    async def predict_batched(self, drawing: Drawing) -> Prediction:
        """`predict` with the forward pass shared with concurrent requests (micro_batch)."""
        with self.load.track():
            model = self.holder.require()
            image = to_image(drawing)
            return _prediction(model, await self.batcher.submit(model, image))

    async def ws_reply(self, text: str) -> str:
        """One WebSocket text message in, one JSON reply out; never raises."""
        msg_id: Any = None
        try:
            try:
                message = parse_json(text)
            except JSONNestingError as exc:
                return _error(None, "invalid_json", f"message refused: {exc}")
            except ValueError as exc:
                return _error(None, "invalid_json", f"message is not valid JSON: {exc}")
            if not isinstance(message, dict):
                return _error(None, "invalid_message", "a message must be a JSON object")
            msg_id = message.pop("id", None)
            if not _valid_id(msg_id):
                msg_id = None
                return _error(None, "invalid_id", f"id must be a string (<= {MAX_ID_CHARS}) or a number")
            kind = message.pop("type", None)
            if kind != "predict":
                return _error(msg_id, "unknown_type", f"unknown message type {kind!r}: expected 'predict'")
            drawing = Drawing.model_validate(message)
            p = await self.predict_batched(drawing)
            return WsPrediction(id=msg_id, **p.model_dump()).model_dump_json()
        except ValidationError as exc:
            return _error(msg_id, "invalid_input", describe(exc.errors()))
        except PreprocessingError as exc:
            return _error(msg_id, "invalid_input", str(exc))
        except NoModelError as exc:
            return _error(msg_id, "no_model", str(exc))
        except Exception:
            log.exception("unexpected error on a WebSocket message")
            return _error(msg_id, "internal_error", "the server failed on this message; it keeps serving")

    # -- model and rounds ----------------------------------------------------------------------
    def model_info(self) -> ModelInfo:
        model = self.holder.current
        return ModelInfo(
            model_uri=model.uri if model else self.holder.configured_uri,
            model_version=model.version if model else None,
            loaded_at=model.loaded_at if model else None,
            metrics=model.metrics if model else {},
            last_error=self.holder.last_error,
            live=self.rounds.live(model.version if model else None),
        )

    def add_round(self, round_in: RoundIn) -> RoundCreated:
        assert round_in.width is not None
        assert round_in.height is not None
        strokes_to_image(round_in.strokes, round_in.width, round_in.height)  # a usable drawing only
        model = self.holder.current
        version = round_in.model_version or (model.version if model else None)
        # The registered name is the served model's; with none loaded, the round names no model.
        uri = f"models:/{parse_model_uri(model.uri)[0]}/{version}" if model and version else ""
        record = self.rounds.append(
            {
                "strokes": round_in.strokes,
                "width": round_in.width,
                "height": round_in.height,
                "target": round_in.target,
                "guess": round_in.guess,
                "probabilities": round_in.probabilities,
                "model_uri": uri,
                "model_version": version,
                "won": round_in.guess == round_in.target,
            }
        )
        return RoundCreated(id=record["id"])

    def round_stats(self) -> RoundStats:
        return self.rounds.stats()


def _forward(model: LoadedModel, images: list[np.ndarray]) -> list[np.ndarray]:
    return list(model.probabilities(images))  # one row per image


def _prediction(model: LoadedModel, probs: np.ndarray) -> Prediction:
    return Prediction(
        digit=int(probs.argmax()),
        probabilities=probs.tolist(),
        model_uri=model.uri,
        model_version=model.version,
    )


def _valid_id(value: Any) -> bool:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return True
    return isinstance(value, str) and len(value) <= MAX_ID_CHARS


def _error(msg_id: Any, code: str, message: str) -> str:
    return WsError(id=msg_id, code=code, message=message).model_dump_json()
