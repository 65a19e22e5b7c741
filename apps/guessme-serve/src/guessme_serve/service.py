"""The serving logic without Ray: predict, WebSocket messages, model info, player rounds.

The Ray Serve deployment (app.py) owns one GuessmeService per replica; the benchmark runs the
same service under plain uvicorn to measure what Ray Serve adds.
"""

import logging
import secrets
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from guessme_contracts.limits import NUM_DIGITS
from guessme_contracts.messages import (
    CLIENT_TYPES,
    MAX_ID_CHARS,
    DealMessage,
    Drawing,
    ErrorCode,
    ErrorMessage,
    MessageId,
    Prediction,
    PredictionMessage,
    RoundMessage,
)
from guessme_core import PreprocessingError, pixels_to_image, strokes_to_image
from guessme_core.player_files import player_hash
from guessme_serve.json_input import JSONNestingError, parse_json
from guessme_serve.load_gauge import LoadGauge
from guessme_serve.micro_batch import MicroBatcher
from guessme_serve.model_holder import (
    LoadedModel,
    ModelHolder,
    NoModelError,
    load_from_registry,
)
from guessme_serve.rate_limit import ClientLimiter
from guessme_serve.rounds import RoundStore, SaveLimits, SaveRefused, default_player_dir, quota_message
from guessme_serve.schemas import ModelInfo, RoundCreated, RoundIn, RoundStats, Withdrawal, describe
from guessme_serve.tickets import TicketError, TicketSigner, load_ticket_key
from guessme_serve.ws_connections import trusted_client_header

log = logging.getLogger("guessme_serve")

MAX_WS_MESSAGE_CHARS = 1 << 20  # a 10,000-point drawing is ~200 kB; anything near 1 MiB is abuse
_MESSAGE_ID: TypeAdapter[Any] = TypeAdapter(MessageId)
_EXPECTED_TYPES = " or ".join(repr(t) for t in CLIENT_TYPES)


@dataclass(frozen=True)
class ServiceSettings:
    """GuessmeService's tunables from the deployment's user_config (besides model_uri; the socket
    admission's are ws_connections.ConnectionSettings). These defaults are the only ones: the serve
    config sets only what differs from them."""

    ws_rate_per_s: float = 50.0  # sustained messages per second per connection
    ws_burst: float = 100.0
    # Saved rounds, per client (its address, or `client_ip_header` set by a trusted proxy).
    round_rate_per_s: float = 0.2  # a round takes seconds to draw: 12 a minute is a fast human
    round_burst: float = 6.0  # one game's rounds at once
    rounds_per_client_per_day: int = 200
    player_disk_budget_mb: float = 1024.0  # all player data on the volume; past it saving answers 507
    ticket_ttl_s: float = 300.0  # a round's longest time (120 s) plus the result screen
    # Behind our own proxy: the header it sets to the client's address (x-real-ip, or x-forwarded-for,
    # of which the last entry is taken). Empty: the connection's address.
    client_ip_header: str = ""
    # The probe gate: a new model serves only if it recognises this share of the probe set (model_holder).
    # Its owner is params.yaml promote.verify_min_accuracy; serve-config.yaml sets it (a drift test ties
    # them). None: no gate.
    probe_min_accuracy: float | None = None
    # TEST ONLY: the game may ask for the digit to draw (`?targets=` in demos and browser tests).
    test_client_targets: bool = False

    @classmethod
    def from_user_config(
        cls, config: dict[str, Any], environ: dict[str, str] | None = None
    ) -> "ServiceSettings":
        config = {**config, "client_ip_header": trusted_client_header(config, environ)}
        known: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in config:
                default, value = getattr(cls, f.name), config[f.name]
                if default is None:  # an optional number (the probe gate's threshold)
                    known[f.name] = None if value is None else float(value)
                else:
                    kind = type(default)
                    known[f.name] = _as_bool(value) if kind is bool else kind(value)
        return cls(**known)

    def save_limits(self) -> SaveLimits:
        return SaveLimits(
            per_client_per_day=self.rounds_per_client_per_day,
            disk_budget_bytes=int(self.player_disk_budget_mb * (1 << 20)),
            ticket_ttl_s=self.ticket_ttl_s,
        )


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def to_image(drawing: Drawing) -> np.ndarray:
    """The shared preprocessing: never re-implemented here."""
    if drawing.pixels is not None:
        return pixels_to_image(drawing.pixels)
    assert drawing.width is not None
    assert drawing.height is not None
    return strokes_to_image(drawing.strokes, drawing.width, drawing.height)


class GuessmeService:
    def __init__(
        self,
        holder: ModelHolder | None = None,
        rounds: RoundStore | None = None,
        signer: TicketSigner | None = None,
    ) -> None:
        self.holder = holder or ModelHolder(load_from_registry)
        self.rounds = rounds or RoundStore(default_player_dir())
        self.settings = ServiceSettings.from_user_config({})
        self.signer = signer or TicketSigner(load_ticket_key(), self.settings.ticket_ttl_s)
        self.limiter = ClientLimiter(self.settings.round_rate_per_s, self.settings.round_burst)
        self.batcher: MicroBatcher[LoadedModel, np.ndarray, np.ndarray] = MicroBatcher(_forward)
        self.load = LoadGauge()  # predictions in flight: what the autoscaler scales on

    async def configure(self, user_config: dict[str, Any]) -> None:
        """What `reconfigure()` does: new settings at once, then the (possibly slow) model swap."""
        self.apply(ServiceSettings.from_user_config(user_config))
        await self.holder.set_uri(str(user_config.get("model_uri") or ""), self.settings.probe_min_accuracy)

    def apply(self, settings: ServiceSettings) -> None:
        old, self.settings = self.settings, settings
        self.signer.ttl_s = settings.ticket_ttl_s
        if (old.round_rate_per_s, old.round_burst) != (settings.round_rate_per_s, settings.round_burst):
            self.limiter = ClientLimiter(settings.round_rate_per_s, settings.round_burst)

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

    async def ws_reply(self, text: str, session: str = "") -> str:
        """One WebSocket text message in (guessme_contracts.messages.ClientMessage), one JSON reply
        out (a ServerMessage); never raises."""
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
            try:  # the id first: every later answer echoes it
                msg_id = _MESSAGE_ID.validate_python(message.get("id"))
            except ValidationError:
                return _error(None, "invalid_id", f"id must be a string (<= {MAX_ID_CHARS}) or a number")
            kind = message.get("type")
            model = CLIENT_TYPES.get(kind) if isinstance(kind, str) else None
            if model is None:
                expected = f"expected {_EXPECTED_TYPES}"
                return _error(msg_id, "unknown_type", f"unknown message type {kind!r}: {expected}")
            request = model.model_validate(message)
            if isinstance(request, DealMessage):
                return self.deal(session, request.target).model_copy(update={"id": msg_id}).model_dump_json()
            p = await self.predict_batched(request)
            return PredictionMessage(id=msg_id, **p.model_dump()).model_dump_json()
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

    # -- rounds: dealt by the server, saved with their ticket ------------------------------------
    def deal(self, session: str, requested: int | None = None) -> RoundMessage:
        """A new round for this socket session: the server picks the digit (the test setting
        `test_client_targets` lets the game ask for one, a digit as DealMessage validates it) and signs it."""
        honoured = requested is not None and self.settings.test_client_targets
        target = requested if requested is not None and honoured else secrets.randbelow(NUM_DIGITS)
        ticket = self.signer.issue(target, session)
        return RoundMessage(target=target, ticket=ticket.text, expires_in_s=self.signer.ttl_s)

    def client_key(self, address: str) -> str:
        return self.signer.pseudonym(address)

    def admit_round(self, client: str) -> None:
        """The cheap checks before a body is parsed: the client's rate and daily quota (429)."""
        if not self.limiter.allow(client):
            rate = self.settings.round_rate_per_s * 60
            raise SaveRefused(429, "rate_limited", f"too many drawings: at most {rate:g} a minute are saved")
        limit = self.settings.rounds_per_client_per_day
        if self.rounds.client_rounds_today(client) >= limit:
            raise SaveRefused(429, "daily_quota", quota_message(limit))

    def add_round(self, round_in: RoundIn, client: str = "") -> RoundCreated:
        """Raises TicketError (403/422), SaveRefused (409/429/507), PreprocessingError or NoModelError."""
        assert round_in.width is not None
        assert round_in.height is not None
        ticket = self.signer.verify(round_in.ticket)
        if ticket.target != round_in.target:
            raise TicketError("wrong_target", f"the round dealt a {ticket.target}, not a {round_in.target}")
        image = strokes_to_image(round_in.strokes, round_in.width, round_in.height)  # a usable drawing only
        model = self.holder.require()
        served = {*self.holder.served_versions, model.version}
        if round_in.model_version is not None and round_in.model_version not in served:
            raise TicketError("unknown_version", "model_version is not a version this server has served")
        # The label is the ticket's; the guess is the served model's own reading, not the client's claim.
        probs = model.probabilities([image])[0]
        guess = int(probs.argmax())
        record = self.rounds.save(
            {
                "strokes": round_in.strokes,
                "width": round_in.width,
                "height": round_in.height,
                "target": ticket.target,
                "guess": guess,
                "probabilities": [round(float(p), 5) for p in probs],
                "client_guess": round_in.guess,
                "model_uri": model.uri,
                "model_version": model.version,
                "won": guess == ticket.target,
                "player": player_hash(round_in.player_id) if round_in.player_id else None,
                "session": ticket.session,
            },
            ticket_nonce=ticket.nonce,
            ticket_issued_ms=ticket.issued_ms,
            client=client,
            limits=self.settings.save_limits(),
        )
        return RoundCreated(id=record["id"], won=record["won"])

    def withdraw(self, body: Withdrawal) -> None:
        self.rounds.withdraw(player_hash(body.player_id))

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


def _error(msg_id: Any, code: ErrorCode, message: str) -> str:
    return ErrorMessage(id=msg_id, code=code, message=message).model_dump_json()
