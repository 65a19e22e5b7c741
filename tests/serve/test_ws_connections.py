"""WebSocket admission in-process (FastAPI TestClient, no Ray): idle sockets close with the code
the game reconnects on, one client address holds at most its cap, and the game agrees on the codes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from guessme_contracts.messages import IDLE_CLOSE_CODE, TOO_MANY_CLOSE_CODE
from guessme_serve.api import bind_service, create_api
from guessme_serve.model_holder import ModelHolder
from guessme_serve.rounds import RoundStore
from guessme_serve.service import GuessmeService
from guessme_serve.ws_connections import CONNECTIONS, ConnectionSettings, client_address

from .conftest import tiny_model

pytestmark = pytest.mark.unit
SOCKET_TS = Path(__file__).resolve().parents[2] / "apps" / "frontend" / "src" / "lib" / "socket.ts"
PIXELS = {"pixels": [[0.0] * 28] * 10 + [[0.0] * 10 + [1.0] * 8 + [0.0] * 10] * 8 + [[0.0] * 28] * 10}


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("GUESSME_FRONTEND_DIST", str(tmp_path / "no-dist"))
    service = GuessmeService(ModelHolder(lambda uri: tiny_model()), RoundStore(tmp_path / "rounds.jsonl"))
    service.holder.current = tiny_model("3")
    bind_service(service)
    saved = CONNECTIONS.settings
    with TestClient(create_api()) as c:
        yield c
    CONNECTIONS.settings = saved


def test_idle_socket_is_closed_with_the_idle_code_and_an_active_one_is_not(client: TestClient) -> None:
    CONNECTIONS.configure({"ws_idle_timeout_s": 0.4})
    with client.websocket_connect("/ws") as ws:
        for _ in range(4):  # messages keep it open past the timeout: the clock restarts on each
            time.sleep(0.2)
            ws.send_text(json.dumps({"type": "predict", "id": 1, **PIXELS}))
            assert ws.receive_json()["type"] == "prediction"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()  # then silence
    assert closed.value.code == IDLE_CLOSE_CODE
    assert "idle" in closed.value.reason
    assert CONNECTIONS.open_sockets == 0


def test_a_client_over_its_cap_is_refused_with_a_reason(client: TestClient) -> None:
    CONNECTIONS.configure({"ws_max_per_client": 2})
    with client.websocket_connect("/ws") as first, client.websocket_connect("/ws") as second:
        assert CONNECTIONS.open_sockets == 2
        with client.websocket_connect("/ws") as third, pytest.raises(WebSocketDisconnect) as refused:
            third.receive_text()
        assert refused.value.code == TOO_MANY_CLOSE_CODE
        assert "too many connections from your address (limit 2)" in refused.value.reason
        # Another address (through the configured proxy header) is not affected.
        CONNECTIONS.configure({"ws_max_per_client": 2, "client_ip_header": "x-real-ip"})
        with client.websocket_connect("/ws", headers={"x-real-ip": "10.0.0.9"}) as other:
            other.send_text(json.dumps({"type": "predict", "id": 2, **PIXELS}))
            assert other.receive_json()["type"] == "prediction"
        for ws in (first, second):  # the admitted sockets still serve
            ws.send_text(json.dumps({"type": "predict", "id": 3, **PIXELS}))
            assert ws.receive_json()["type"] == "prediction"
    # Closed sockets give their places back.
    CONNECTIONS.configure({"ws_max_per_client": 2})
    with client.websocket_connect("/ws") as again:
        again.send_text(json.dumps({"type": "predict", "id": 4, **PIXELS}))
        assert again.receive_json()["type"] == "prediction"
    assert CONNECTIONS.open_sockets == 0


@pytest.mark.parametrize(
    ("headers", "header", "expected"),
    [
        ({}, "", "1.2.3.4"),
        ({"x-real-ip": "9.9.9.9"}, "", "1.2.3.4"),  # not configured: a client's header is ignored
        ({"x-real-ip": " 9.9.9.9 "}, "X-Real-IP", "9.9.9.9"),
        ({"x-forwarded-for": "6.6.6.6, 9.9.9.9"}, "x-forwarded-for", "9.9.9.9"),  # ours is last
        ({}, "x-real-ip", "1.2.3.4"),
    ],
)
def test_client_address(headers: dict[str, str], header: str, expected: str) -> None:
    assert client_address(headers, "1.2.3.4", header) == expected


@pytest.mark.parametrize(
    "config", [{"ws_idle_timeout_s": 0}, {"ws_max_per_client": 0}, {"ws_idle_timeout_s": "x"}]
)
def test_bad_settings_are_refused(config: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"ws_idle_timeout_s|could not convert"):
        ConnectionSettings.from_user_config(config)


def test_the_game_reads_the_close_codes_from_the_contract() -> None:
    """socket.ts takes the codes from the TypeScript generated from guessme_contracts (kept current by
    test_generated_types.py), so the game reconnects quietly on idle and says why on the cap; no copy."""
    text = SOCKET_TS.read_text()
    assert re.search(r"\{ IDLE_CLOSE_CODE, TOO_MANY_CLOSE_CODE \} = WS_CONSTANTS;", text)
    assert str(IDLE_CLOSE_CODE) not in text
    assert str(TOO_MANY_CLOSE_CODE) not in text
