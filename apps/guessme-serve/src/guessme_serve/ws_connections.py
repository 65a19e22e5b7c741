"""WebSocket admission for a game of many open tabs: an idle timeout and a per-client cap.

A game tab holds its socket for as long as it is open, but it only costs the server while the
player draws. A socket with no message for `ws_idle_timeout_s` is closed with IDLE_CLOSE_CODE,
which the game reads as "reconnect when the player draws again" (no error shown). One client
address holds at most `ws_max_per_client` sockets; one more is accepted only to be closed at
once with TOO_MANY_CLOSE_CODE and a reason that says so (a refused handshake would reach the
browser as a bare 1006, with no reason).

The close codes are part of the game's protocol: guessme_contracts.messages defines them, for the
game too (apps/frontend/src/lib/socket.ts, docs/api.md).
"""

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.types import Message
from starlette.websockets import WebSocket

from guessme_contracts.messages import IDLE_CLOSE_CODE, TOO_MANY_CLOSE_CODE


@dataclass(frozen=True)
class ConnectionSettings:
    """From the deployment's user_config: read again on every reconfigure()."""

    idle_timeout_s: float = 60.0
    max_per_client: int = 32  # a classroom behind one NAT address still fits
    # Behind our own proxy: the header it sets to the client's address (x-real-ip, or
    # x-forwarded-for, of which the last entry is taken). Empty: the connection's own address.
    client_ip_header: str = ""

    @classmethod
    def from_user_config(
        cls, config: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> "ConnectionSettings":
        settings = cls(
            idle_timeout_s=float(config.get("ws_idle_timeout_s", cls.idle_timeout_s)),
            max_per_client=int(config.get("ws_max_per_client", cls.max_per_client)),
            client_ip_header=trusted_client_header(config, environ),
        )
        if not settings.idle_timeout_s > 0 or settings.max_per_client < 1:
            raise ValueError("ws_idle_timeout_s must be > 0 and ws_max_per_client >= 1")
        return settings


# Where the platform puts a trusted proxy in front of every request (Kubernetes: ingress-nginx), it
# names that proxy's client-address header here; an explicit user_config client_ip_header wins.
CLIENT_IP_HEADER_ENV = "GUESSME_CLIENT_IP_HEADER"


def trusted_client_header(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str:
    """The header naming the client's address: user_config's `client_ip_header`, else the platform's
    GUESSME_CLIENT_IP_HEADER, else none (trust only the connection's own address)."""
    env = os.environ if environ is None else environ
    return str(config.get("client_ip_header", env.get(CLIENT_IP_HEADER_ENV, "")))


def client_address(headers: Mapping[str, str], peer: str, header: str) -> str:
    """The client's address: the trusted proxy's header when configured and present, else the peer."""
    value = headers.get(header.lower(), "") if header else ""
    if header.lower() == "x-forwarded-for":
        value = value.rsplit(",", 1)[-1]  # our proxy appends; earlier entries are the client's word
    return value.strip() or peer


class GuardedSocket:
    """The accepted socket, whose `receive()` closes it after the idle timeout."""

    def __init__(self, ws: WebSocket, limiter: "ConnectionLimiter") -> None:
        self.ws = ws
        self._limiter = limiter

    async def receive(self) -> Message | None:
        """The next ASGI message, or None once the socket was closed for being idle."""
        timeout = self._limiter.settings.idle_timeout_s  # a reconfigure applies to open sockets too
        try:
            async with asyncio.timeout(timeout):
                return await self.ws.receive()
        except TimeoutError:
            await self.ws.close(IDLE_CLOSE_CODE, f"idle for {timeout:g} s: reconnect to play on")
            return None


class ConnectionLimiter:
    """Counts this replica's open sockets per client address (the cap is per replica)."""

    def __init__(self, settings: ConnectionSettings | None = None) -> None:
        self.settings = settings or ConnectionSettings()
        self._open: Counter[str] = Counter()

    def configure(self, user_config: Mapping[str, Any]) -> None:
        self.settings = ConnectionSettings.from_user_config(user_config)

    @property
    def open_sockets(self) -> int:
        return sum(self._open.values())

    def open_from(self, address: str) -> int:
        return self._open[address]

    @asynccontextmanager
    async def admit(self, ws: WebSocket) -> AsyncIterator[GuardedSocket | None]:
        """Accepts the socket; yields it guarded, or None when its client is over the cap (closed)."""
        peer = ws.client.host if ws.client else ""
        address = client_address(ws.headers, peer, self.settings.client_ip_header)
        cap = self.settings.max_per_client
        if self._open[address] >= cap:
            await ws.accept()
            await ws.close(TOO_MANY_CLOSE_CODE, f"too many connections from your address (limit {cap})")
            yield None
            return
        self._open[address] += 1
        try:
            await ws.accept()
            yield GuardedSocket(ws, self)
        finally:
            self._open[address] -= 1
            if self._open[address] <= 0:
                del self._open[address]


# One per process, like the bound service (api.bind_service): the replica's sockets.
CONNECTIONS = ConnectionLimiter()
