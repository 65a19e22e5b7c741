"""Refuse a request from its head alone, before its body is read or parsed (a flood costs little)."""

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

# Returns an ASGI app that answers the refusal, or None to let the request through.
Gate = Callable[[Scope], ASGIApp | None]


class EarlyRefusal:
    """Pure ASGI middleware: `gate(scope)` sees method, path, headers and client, never the body."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self.gate(scope) if scope["type"] == "http" else None
        handler: Callable[[Scope, Receive, Send], Awaitable[None]] = refusal or self.app
        await handler(scope, receive, send)
