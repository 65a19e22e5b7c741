"""The WebSocket handler speaks the contract: every reply is a guessme_contracts ServerMessage, what
the contract refuses is refused, and docs/api.md documents exactly the contract's error codes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from guessme_contracts.messages import ERROR_CODES, ServerMessage

from .conftest import documented_ws_codes, tiny_service

pytestmark = pytest.mark.unit

REPLY: TypeAdapter[Any] = TypeAdapter(ServerMessage)
STROKES = {"strokes": [[[10, 50, 90], [20, 120, 220]]], "width": 280, "height": 280}

# message sent -> (reply type, error code or None, id echoed)
CASES: dict[str, tuple[str, tuple[str, str | None, Any]]] = {
    "predict": (json.dumps({"type": "predict", "id": 7, **STROKES}), ("prediction", None, 7)),
    "deal": (json.dumps({"type": "deal", "id": "d1"}), ("round", None, "d1")),
    "deal past 9": (json.dumps({"type": "deal", "id": 2, "target": 12}), ("error", "invalid_input", 2)),
    "not json": ("{", ("error", "invalid_json", None)),
    "not an object": ("[1]", ("error", "invalid_message", None)),
    "boolean id": (json.dumps({"type": "predict", "id": True, **STROKES}), ("error", "invalid_id", None)),
    "long id": (json.dumps({"type": "deal", "id": "x" * 201}), ("error", "invalid_id", None)),
    "unknown type": (json.dumps({"type": "guess", "id": 3}), ("error", "unknown_type", 3)),
    "bad drawing": (json.dumps({"type": "predict", "id": 4, "strokes": "x"}), ("error", "invalid_input", 4)),
    "string coordinates": (
        json.dumps({"type": "predict", "id": 5, **STROKES, "width": "280"}),
        ("error", "invalid_input", 5),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_every_reply_is_a_server_message(case: str, tmp_path: Path) -> None:
    text, (kind, code, msg_id) = CASES[case]
    reply = REPLY.validate_json(asyncio.run(tiny_service(tmp_path).ws_reply(text, "session")))
    assert (reply.type, getattr(reply, "code", None), reply.id) == (kind, code, msg_id)


def test_docs_list_exactly_the_contracts_error_codes() -> None:
    assert documented_ws_codes() == ERROR_CODES
