"""Idle timeout and per-client cap through real Ray Serve (HAProxy, two replicas, reconfigure()):
the settings must reach the object the WebSocket route counts with, in every replica."""

from __future__ import annotations

import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from guessme_contracts.messages import IDLE_CLOSE_CODE, TOO_MANY_CLOSE_CODE

pytestmark = pytest.mark.integration


def _closed_with(ws: ClientConnection, timeout: float) -> int | None:
    """The close code the server sent within `timeout` s, or None if the socket stayed open."""
    try:
        ws.recv(timeout=timeout)
    except TimeoutError:
        return None
    except ConnectionClosed:
        pass
    return ws.close_code


def test_idle_timeout_and_cap_through_ray_serve(serve_app: Any, trained_model: Any) -> None:
    cap = 2
    serve_app.deploy(
        trained_model.uri, ws_idle_timeout_s=20, ws_max_per_client=cap, client_ip_header="x-real-ip"
    )
    try:
        replicas = 2  # serve-config.yaml's min_replicas: the cap is per replica
        same = [
            connect(serve_app.ws_url, additional_headers={"x-real-ip": "10.1.1.1"})
            for _ in range(replicas * cap + 1)
        ]
        other = connect(serve_app.ws_url, additional_headers={"x-real-ip": "10.2.2.2"})
        codes = [_closed_with(ws, 2.0) for ws in same]  # well within the idle timeout
        assert codes.count(TOO_MANY_CLOSE_CODE) >= 1, codes  # one address cannot hold more
        assert _closed_with(other, 1.0) is None  # another address is not affected
        time.sleep(8.0)
        assert _closed_with(other, 20.0) == IDLE_CLOSE_CODE  # then silence closes it
        for ws in [*same, other]:
            ws.close()
    finally:
        serve_app.deploy(trained_model.uri)
