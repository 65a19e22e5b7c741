"""Round tickets: the server deals each round's digit and signs it, so a label cannot be made up.

A ticket is `v1.<session>.<target>.<issued_ms>.<nonce>.<mac>`, the MAC an HMAC-SHA256 over everything
before it with a key every replica shares (GUESSME_ROUND_TICKET_KEY, from a Kubernetes Secret; never
in Git). `session` names the WebSocket connection that dealt the round, `nonce` makes each ticket
unique: the round store records it, so a ticket saves at most one round (guessme_serve.rounds).
"""

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("guessme_serve")

KEY_ENV = "GUESSME_ROUND_TICKET_KEY"
KEY_FILE = "round-ticket.key"  # the dev default, inside GUESSME_STATE (never committed)
MIN_KEY_CHARS = 32
VERSION = "v1"


class TicketError(ValueError):
    """A ticket that does not admit a round; `code` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Ticket:
    session: str
    target: int
    issued_ms: int
    nonce: str
    text: str  # the signed form the client holds


def load_ticket_key(environ: dict[str, str] | None = None) -> bytes:
    """The shared key: $GUESSME_ROUND_TICKET_KEY, else a key generated once into $GUESSME_STATE
    (local `make up`: every replica of this clone reads the same file), else a per-process key
    (tickets then only verify in the replica that dealt them; a warning says so)."""
    env = os.environ if environ is None else environ
    explicit = env.get(KEY_ENV, "")
    if explicit:
        if len(explicit) < MIN_KEY_CHARS:
            raise ValueError(f"{KEY_ENV} must be at least {MIN_KEY_CHARS} characters")
        return explicit.encode()
    state = env.get("GUESSME_STATE")
    if state:
        return _state_key(Path(state) / KEY_FILE)
    log.warning("no %s and no GUESSME_STATE: round tickets verify only in this replica", KEY_ENV)
    return secrets.token_bytes(32)


def _state_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: of several replicas starting together, one writes the key and all read it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the writer may not have written yet
            key = path.read_bytes().strip()
            if len(key) >= MIN_KEY_CHARS:
                return key
            time.sleep(0.02)
        raise ValueError(f"{path}: round ticket key is too short; delete it to generate a new one") from None
    key = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


class TicketSigner:
    def __init__(self, key: bytes, ttl_s: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        if len(key) < MIN_KEY_CHARS // 2:
            raise ValueError("ticket key too short")
        self._key = key
        self.ttl_s = ttl_s
        self._clock = clock

    def issue(self, target: int, session: str) -> Ticket:
        issued = int(self._clock() * 1000)
        nonce = secrets.token_hex(8)
        body = f"{VERSION}.{session}.{target}.{issued}.{nonce}"
        return Ticket(session, target, issued, nonce, f"{body}.{self._mac(body)}")

    def verify(self, text: str) -> Ticket:
        """The ticket's claims if genuine and fresh, else TicketError (reuse is the store's check)."""
        parts = text.split(".") if isinstance(text, str) and len(text) <= 200 else []
        if len(parts) != 6 or parts[0] != VERSION:
            raise TicketError("invalid_ticket", "the round ticket is malformed")
        body, mac = text.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body)):
            raise TicketError("invalid_ticket", "the round ticket's signature does not match")
        _, session, target, issued, nonce = parts[:5]
        ticket = Ticket(session, int(target), int(issued), nonce, text)
        age_s = self._clock() - ticket.issued_ms / 1000
        if age_s > self.ttl_s:
            message = f"the round ticket expired ({age_s:.0f} s old, limit {self.ttl_s:g} s)"
            raise TicketError("expired_ticket", message)
        if age_s < -5:  # issued in the future: a clock gone wrong, never a valid ticket
            raise TicketError("invalid_ticket", "the round ticket's time is in the future")
        return ticket

    def pseudonym(self, value: str) -> str:
        """A keyed hash: lets the store count per client without keeping an address."""
        return self._mac(f"client:{value}")[:16]

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_session() -> str:
    return secrets.token_hex(8)
