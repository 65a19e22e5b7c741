"""The FastAPI ingress: REST + WebSocket routes over the replica's GuessmeService.

Routes are plain functions reading the replica's service (bound once per process), so the
same API runs inside Ray Serve (app.py) and, for the benchmark baseline, under plain uvicorn.
"""

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Scope

from guessme_contracts.messages import ErrorMessage, Prediction
from guessme_core import PreprocessingError
from guessme_serve.admission import EarlyRefusal
from guessme_serve.body_limit import BodySizeLimit
from guessme_serve.json_input import parse_json
from guessme_serve.model_holder import NoModelError
from guessme_serve.paths import configured_path
from guessme_serve.rate_limit import TokenBucket
from guessme_serve.rounds import SaveRefused
from guessme_serve.schemas import (
    ModelInfo,
    PredictRequest,
    RoundCreated,
    RoundIn,
    RoundStats,
    SaveRefusal,
    Withdrawal,
    brief_errors,
    describe,
)
from guessme_serve.service import MAX_WS_MESSAGE_CHARS, GuessmeService
from guessme_serve.tickets import TicketError, new_session
from guessme_serve.ws_connections import CONNECTIONS, GuardedSocket, client_address

log = logging.getLogger("guessme_serve")

MAX_BODY_BYTES = 2 << 20
WS_CLOSE_TOO_BIG = 1009

_service: GuessmeService | None = None


def bind_service(service: GuessmeService) -> None:
    """Called once per process (replica constructor or benchmark server)."""
    global _service
    _service = service


def current_service() -> GuessmeService:
    if _service is None:
        raise RuntimeError("no GuessmeService bound in this process")
    return _service


def frontend_dist() -> Path:
    return configured_path("GUESSME_FRONTEND_DIST", "apps", "frontend", "dist")


async def predict(body: PredictRequest) -> Prediction:
    """Guess the digit of a drawing (28x28 pixels, or vector strokes on a canvas)."""
    return current_service().predict(body)


async def healthz() -> dict[str, object]:
    """Liveness: ok as long as the replica answers, with or without a model."""
    return {"status": "ok", "model_loaded": current_service().holder.current is not None}


async def model() -> ModelInfo:
    """The served model: URI, version, load time, logged metrics, last load error, live game stats."""
    return current_service().model_info()


ROUND_PATHS = ("/rounds", "/rounds/withdrawals")  # writes to the player data: limited per client


def _client_key(request: Request) -> str:
    """The saving client's key: a keyed hash of its address (no address is stored)."""
    service = current_service()
    peer = request.client.host if request.client else ""
    # The same rule as the WebSocket's per-client cap (ws_connections.client_address).
    return service.client_key(client_address(request.headers, peer, service.settings.client_ip_header))


def _admit(scope: Scope) -> ASGIApp | None:
    """The client's rate and daily quota, from the request head: a flood is answered 429 before its
    body is read (EarlyRefusal); an admitted request carries its client key to the route."""
    if scope["method"] != "POST" or scope["path"] not in ROUND_PATHS:
        return None
    request = Request(scope)
    client = _client_key(request)
    try:
        current_service().admit_round(client)
    except SaveRefused as exc:
        return _refusal_response(exc)
    request.state.round_client = client
    return None


def round_client(request: Request) -> str:
    client = getattr(request.state, "round_client", None)
    if client is None:  # only EarlyRefusal sets it: without that middleware, no write is admitted
        raise RuntimeError("round admission did not run")
    return str(client)


# The player-data routes run in a worker thread: a save rasterises the drawing, reads it with the model
# and appends under the data folder's file lock (a shared network volume on a cluster). On the event loop
# that work would stall every socket's guesses for its whole length (17-33 ms a save on 2 busy cores).


async def add_round(body: RoundIn, client: str = Depends(round_client)) -> RoundCreated:
    """Store a finished round (only with the player's consent) with the ticket the server dealt for it."""
    return await asyncio.to_thread(current_service().add_round, body, client)


async def withdraw(body: Withdrawal, client: str = Depends(round_client)) -> dict[str, str]:
    """Delete my drawings: every future data version leaves this player's rounds out."""
    await asyncio.to_thread(current_service().withdraw, body)
    return {"status": "withdrawn"}


async def round_stats() -> RoundStats:
    """Rounds won and lost, in total and per model version."""
    return await asyncio.to_thread(current_service().round_stats)


async def websocket(ws: WebSocket) -> None:
    """Live guesses: `{"type": "predict", "id", ...drawing}` -> `{"type": "prediction", "id", ...}`."""
    service = current_service()
    settings = service.settings
    bucket = TokenBucket(settings.ws_rate_per_s, settings.ws_burst)
    session = new_session()  # round tickets name the connection that dealt them
    async with CONNECTIONS.admit(ws) as guarded:  # accepts, or closes over the per-client cap
        if guarded is not None:
            await _serve_socket(ws, guarded, service, bucket, session)


async def _serve_socket(
    ws: WebSocket, guarded: GuardedSocket, service: GuessmeService, bucket: TokenBucket, session: str
) -> None:
    settings = service.settings
    try:
        while True:
            message = await guarded.receive()  # None: closed for being idle
            if message is None or message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                if len(message.get("bytes") or b"") > MAX_WS_MESSAGE_CHARS:
                    await ws.close(WS_CLOSE_TOO_BIG, "message too big")
                    return
                await ws.send_text(_binary_refused())
                continue
            if len(text) > MAX_WS_MESSAGE_CHARS:
                await ws.close(WS_CLOSE_TOO_BIG, f"message too big (limit {MAX_WS_MESSAGE_CHARS} chars)")
                return
            if not bucket.allow():
                await ws.send_text(_rate_limited(settings.ws_rate_per_s))
                continue
            await ws.send_text(await service.ws_reply(text, session))
    except WebSocketDisconnect:
        return


async def frontend(path: str) -> FileResponse:
    """The built game (local mode only; on Kubernetes nginx serves it)."""
    dist = frontend_dist().resolve()
    if not (dist / "index.html").is_file():
        raise HTTPException(404, "not found (no built front end at GUESSME_FRONTEND_DIST)")
    target = (dist / path).resolve()
    if path and target.is_relative_to(dist) and target.is_file():
        return FileResponse(target)
    if Path(path).suffix:  # a missing asset is a 404, not the app shell
        raise HTTPException(404, "not found")
    return FileResponse(dist / "index.html")


def _binary_refused() -> str:
    return ErrorMessage(
        code="binary_not_supported", message="send JSON text messages, not binary"
    ).model_dump_json()


def _rate_limited(rate: float) -> str:
    message = f"too many messages: at most {rate:g} per second; this one was dropped"
    return ErrorMessage(code="rate_limited", message=message).model_dump_json()


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    return JSONResponse({"detail": describe(errors), "errors": brief_errors(errors)}, status_code=422)


async def _bad_drawing(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _no_model(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503)


class _JSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JSONInputRoute(APIRoute):
    """Routes whose JSON bodies are parsed by parse_json (FastAPI's custom Request/APIRoute hook):
    FastAPI answers a JSONDecodeError with a RequestValidationError (422, `json_invalid`), but any
    other parse failure with `400 There was an error parsing the body`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(_JSONRequest(request.scope, request.receive))

        return route_handler


_TICKET_STATUS = {"wrong_target": 422, "unknown_version": 422}  # otherwise 403: no valid ticket


async def _bad_ticket(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TicketError)
    body = SaveRefusal(detail=str(exc), code=exc.code).model_dump()
    return JSONResponse(body, status_code=_TICKET_STATUS.get(exc.code, 403))


def _refusal_response(exc: SaveRefused) -> Response:
    headers = {"retry-after": "60"} if exc.status == 429 else None
    return Response(_refusal_body(exc.code, str(exc)), exc.status, headers, media_type="application/json")


@functools.lru_cache(maxsize=64)
def _refusal_body(code: str, detail: str) -> bytes:
    """A refusal's JSON, rendered once per distinct message (a handful: they name only the settings).
    A flood is answered from its head alone; rendering the answer each time was a third of the app's
    own work per refused post."""
    return bytes(JSONResponse(SaveRefusal(detail=detail, code=code).model_dump()).body)


async def _save_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SaveRefused)
    return _refusal_response(exc)


def create_api() -> FastAPI:
    api = FastAPI(
        title="Guessme serving API",
        version="1.0",
        description="Guess hand-drawn digits with the model named in Git. See docs/api.md.",
        # FastAPI's native OpenTelemetry wraps every request whenever the API is importable (MLflow
        # and Ray bring it), but the platform exports no traces: off, it was ~8% of the CPU of a
        # refused POST /rounds under a flood (tests/benchmarks/bench_rounds.py). Ray Serve's own
        # metrics are unaffected.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    api.router.route_class = JSONInputRoute  # deep nesting is a 422 like any bad JSON
    api.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    api.add_middleware(EarlyRefusal, gate=_admit)  # added last: runs first, before the body is read
    api.add_exception_handler(RequestValidationError, _invalid_request)
    api.add_exception_handler(PreprocessingError, _bad_drawing)
    api.add_exception_handler(NoModelError, _no_model)
    api.add_exception_handler(TicketError, _bad_ticket)
    api.add_exception_handler(SaveRefused, _save_refused)
    errors: dict[int | str, dict[str, Any]] = {
        413: {"description": "body too large"},
        422: {"description": "invalid input (the message says what)"},
    }
    api.post("/predict", responses={**errors, 503: {"description": "no model loaded yet"}})(predict)
    api.get("/healthz")(healthz)
    api.get("/model")(model)
    refusals: dict[int | str, dict[str, Any]] = {
        status: {"model": SaveRefusal, "description": text}
        for status, text in {
            403: "no valid round ticket (forged, malformed or expired)",
            409: "the ticket was already used",
            429: "the client's rate limit or daily quota; the game goes on",
            503: "no model loaded yet",
            507: "the player data store is full; the game goes on",
        }.items()
    }
    api.post("/rounds", status_code=201, responses={**errors, **refusals})(add_round)
    api.post("/rounds/withdrawals", status_code=202, responses={**errors, 429: refusals[429]})(withdraw)
    api.get("/rounds/stats")(round_stats)
    api.websocket("/ws")(websocket)
    api.get("/{path:path}", include_in_schema=False)(frontend)  # last: every other route wins
    return api
