"""Request and response bodies of the serving REST API.

The drawing and the prediction are the WebSocket's too: they live with the socket's messages in
guessme_contracts.messages, the one definition both transports (and the game's generated types) use.
Numbers are strict (no strings or booleans posing as numbers) and finite (no NaN or infinity).
Shapes and drawing rules are checked by guessme_core's preprocessing, the one place they live.
"""

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guessme_contracts.limits import NUM_DIGITS
from guessme_contracts.messages import Digit, Drawing

_NUMBERS = ConfigDict(strict=True, allow_inf_nan=False)


class PredictRequest(Drawing):
    model_config = ConfigDict(
        **_NUMBERS,
        json_schema_extra={
            "examples": [{"strokes": [[[10, 50, 90], [20, 120, 220]]], "width": 280, "height": 280}]
        },
    )


class LiveStats(BaseModel):
    rounds: int = 0
    won: int = 0
    lost: int = 0
    accuracy: float | None = Field(None, description="won / rounds; null before the first round")


class ModelInfo(BaseModel):
    model_uri: str = Field(description='the served registry URI; "" when no model is configured yet')
    model_version: str | None
    loaded_at: str | None = Field(description="ISO 8601 UTC time the served model was loaded")
    metrics: dict[str, float] = Field(description="the version's logged metrics (test accuracy, ...)")
    last_error: str | None = Field(description="the last load failure, if any; the old model keeps serving")
    live: LiveStats = Field(description="rounds played against the served version")


PlayerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="anonymous player id")]


class RoundIn(Drawing):
    """A finished round, sent only when the player consented to share their drawing.

    The label is the round ticket's target (the server dealt it); guess, probabilities and the
    model version stored are the served model's own reading of the drawing, not the client's claim.
    """

    model_config = ConfigDict(**_NUMBERS, extra="ignore")
    ticket: str = Field(max_length=200, description="the round ticket the server dealt over the WebSocket")
    target: Digit = Field(description="the digit the player was asked to draw (must match the ticket)")
    guess: Digit = Field(description="the model's final guess, as the game saw it")
    probabilities: list[float] = Field(min_length=NUM_DIGITS, max_length=NUM_DIGITS)
    model_version: str | None = Field(
        None, max_length=64, description="version that made the guess; must be one this server has served"
    )
    player_id: PlayerId | None = None

    @model_validator(mode="after")
    def _valid_round(self) -> "RoundIn":
        if self.strokes is None:
            raise ValueError("a round carries the drawing's strokes, width and height")
        if any(p < 0.0 or p > 1.0 for p in self.probabilities):
            raise ValueError("probabilities must lie in [0, 1]")
        if abs(sum(self.probabilities) - 1.0) > 0.05:
            raise ValueError("probabilities must sum to 1")
        return self


class Withdrawal(BaseModel):
    """Consent withdrawn: every future data version leaves this player's drawings out."""

    model_config = ConfigDict(strict=True, extra="forbid")
    player_id: PlayerId


class RoundCreated(BaseModel):
    id: str
    won: bool = Field(description="whether the served model reads the drawing as the target")


class SaveRefusal(BaseModel):
    detail: str = Field(description="why the drawing was not saved (the game goes on)")
    code: str = Field(description="machine-readable reason")


class RoundStats(BaseModel):
    total: LiveStats
    by_model_version: dict[str, LiveStats] = Field(description='keyed by model version ("none": no model)')


def describe(errors: Sequence[Mapping[str, Any]], limit: int = 3) -> str:
    """A short, human-readable summary of validation errors (the first few problems)."""
    parts = []
    for err in errors[:limit]:
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        reason = str((err.get("ctx") or {}).get("error", ""))
        if err["type"] == "json_invalid" and reason not in msg:  # FastAPI keeps the parser's reason in ctx
            msg = f"{msg}: {reason}"
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def brief_errors(errors: Sequence[Mapping[str, Any]], limit: int = 10) -> list[dict[str, Any]]:
    """Validation errors without the offending input (it may be huge or not JSON-encodable)."""
    return [{"loc": list(e["loc"]), "msg": str(e["msg"]), "type": e["type"]} for e in errors[:limit]]
