"""The WebSocket messages of `/ws`: what the game sends, and what the server answers.

The serve app validates what arrives and builds what it sends with these models
(guessme_serve.service); the game's TypeScript types are generated from their JSON Schemas
(schemas/, exported by guessme_contracts.json_schemas), so a changed field is one edit here, one in
the handler, and a regeneration; a stale copy fails the unit tests. The flow and the error codes
are described in docs/api.md.

Numbers in a drawing are strict (no strings or booleans posing as numbers) and finite. Shapes and
drawing rules are checked by guessme_core.preprocessing, against guessme_contracts.limits.
"""

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from guessme_contracts.limits import MAX_STROKES, NUM_DIGITS

MAX_ID_CHARS = 200
# Close codes (4000-4999 are private to the application, RFC 6455 7.4.2).
IDLE_CLOSE_CODE = 4000  # idle for the idle timeout: not an error; the game reconnects on its next stroke
TOO_MANY_CLOSE_CODE = 4029  # too many sockets from this client address (like HTTP 429)
EXPORTED = ("IDLE_CLOSE_CODE", "TOO_MANY_CLOSE_CODE", "MAX_ID_CHARS")  # into the JSON Schema of constants

_NUMBERS = ConfigDict(strict=True, allow_inf_nan=False)
# What the server sends: fields with defaults are still always present (required in the schema).
_SENT = ConfigDict(json_schema_serialization_defaults_required=True)

Digit = Annotated[int, Field(ge=0, le=NUM_DIGITS - 1)]
Stroke = Annotated[list[list[float]], Field(min_length=2, max_length=2, description="[xs, ys]")]
MessageId = (
    Annotated[str, Strict(), Field(max_length=MAX_ID_CHARS)]
    | Annotated[int, Strict()]
    | Annotated[float, Strict(), Field(allow_inf_nan=False)]
    | None
)
"""Chosen by the client, echoed back in the answer (null when the message had none or a bad one)."""


class Drawing(BaseModel):
    """Either `pixels` (28x28 ink values in [0, 1]) or `strokes` with the canvas `width` and `height`."""

    model_config = _NUMBERS
    pixels: list[list[float]] | None = Field(None, description="28 rows of 28 ink values in [0, 1]")
    strokes: list[Stroke] | None = Field(
        None, max_length=MAX_STROKES, description="[[xs, ys], ...] in canvas pixels"
    )
    width: float | None = Field(None, description="canvas width in px (with strokes)")
    height: float | None = Field(None, description="canvas height in px (with strokes)")

    @model_validator(mode="after")
    def _one_form(self) -> "Drawing":
        if (self.pixels is None) == (self.strokes is None):
            raise ValueError("send either pixels or strokes (with width and height), not both or neither")
        if self.strokes is not None and (self.width is None or self.height is None):
            raise ValueError("strokes need the canvas width and height")
        return self


# -- client -> server ----------------------------------------------------------------------------
class PredictMessage(Drawing):
    """Guess this drawing: answered by a `prediction` (or an `error`) with the same id."""

    type: Literal["predict"]
    id: MessageId = None


class DealMessage(BaseModel):
    """Deal a new round: answered by a `round` with the same id."""

    model_config = ConfigDict(strict=True)
    type: Literal["deal"]
    id: MessageId = None
    target: Digit | None = Field(
        None, description="the digit wished for; honoured only with the test-only test_client_targets"
    )


ClientMessage = Annotated[PredictMessage | DealMessage, Field(discriminator="type")]
CLIENT_TYPES: dict[str, type[PredictMessage] | type[DealMessage]] = {
    "predict": PredictMessage,
    "deal": DealMessage,
}


# -- server -> client ----------------------------------------------------------------------------
class Prediction(BaseModel):
    """The served model's guess (also the body of REST `POST /predict`)."""

    model_config = _SENT
    digit: int = Field(description="the model's guess")
    probabilities: list[float] = Field(description=f"{NUM_DIGITS} class probabilities, summing to 1")
    model_uri: str
    model_version: str


class PredictionMessage(Prediction):
    type: Literal["prediction"] = "prediction"
    id: MessageId = None


class RoundMessage(BaseModel):
    """A dealt round: the digit to draw and its signed ticket, which `POST /rounds` takes back once."""

    model_config = _SENT
    type: Literal["round"] = "round"
    id: MessageId = None
    target: Digit
    ticket: str
    expires_in_s: float


ErrorCode = Literal[
    "invalid_json",
    "invalid_message",
    "invalid_id",
    "unknown_type",
    "invalid_input",
    "no_model",
    "binary_not_supported",
    "rate_limited",
    "internal_error",
]
ERROR_CODES: frozenset[str] = frozenset(get_args(ErrorCode))


class ErrorMessage(BaseModel):
    """A message that got no answer but this one; the socket stays open."""

    model_config = _SENT
    type: Literal["error"] = "error"
    id: MessageId = None
    code: ErrorCode = Field(description="machine-readable reason (docs/api.md lists them)")
    message: str = Field(description="what was wrong, in words")


ServerMessage = Annotated[PredictionMessage | RoundMessage | ErrorMessage, Field(discriminator="type")]
