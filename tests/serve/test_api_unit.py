"""The API in-process (FastAPI TestClient, no Ray) with a tiny model: contracts and fuzzed bad input."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guessme_serve.api import MAX_BODY_BYTES
from guessme_serve.service import GuessmeService

from .conftest import documented_ws_codes, tiny_model

pytestmark = pytest.mark.unit
# What a hostile message may get back: a documented code that blames the input, not the server.
BAD_INPUT_CODES = documented_ws_codes() - {"internal_error"}

STROKES = {"strokes": [[[10, 50, 90], [20, 120, 220]], [[30, 60], [40, 40]]], "width": 280, "height": 280}
PIXELS = {
    "pixels": [[0.0] * 28 for _ in range(10)] + [[0.0] * 10 + [1.0] * 8 + [0.0] * 10] * 8 + [[0.0] * 28] * 10
}


def _is_prediction(body: dict[str, Any]) -> bool:
    probs = body["probabilities"]
    return (
        len(probs) == 10
        and math.isclose(sum(probs), 1.0, rel_tol=1e-4)
        and body["digit"] == max(range(10), key=probs.__getitem__)
        and body["model_version"] == "3"
        and body["model_uri"] == "models:/guessme-cnn/3"
    )


@pytest.mark.parametrize("drawing", [PIXELS, STROKES], ids=["pixels", "strokes"])
def test_predict_rest_and_ws(client: TestClient, drawing: dict[str, Any]) -> None:
    res = client.post("/predict", json=drawing)
    assert res.status_code == 200
    assert _is_prediction(res.json())
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "predict", "id": "a1", **drawing}))
        reply = ws.receive_json()
    assert reply["type"] == "prediction"
    assert reply["id"] == "a1"
    assert _is_prediction(reply)
    assert reply["probabilities"] == res.json()["probabilities"]


def test_no_model_answers_503_and_health_stays_ok(client: TestClient, service: GuessmeService) -> None:
    service.holder.current = None
    service.holder.configured_uri = ""
    res = client.post("/predict", json=PIXELS)
    assert res.status_code == 503
    assert "no model is loaded" in res.json()["detail"]
    assert client.get("/healthz").json() == {"status": "ok", "model_loaded": False}
    info = client.get("/model").json()
    assert info["model_uri"] == ""
    assert info["model_version"] is None
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "predict", "id": 1, **PIXELS}))
        assert ws.receive_json()["code"] == "no_model"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"pixels": [[0.5] * 28] * 27}, "shape 28x28"),
        ({"pixels": [[0.5] * 28] * 28, "strokes": STROKES["strokes"]}, "either pixels or strokes"),
        ({}, "either pixels or strokes"),
        ({"strokes": STROKES["strokes"]}, "width and height"),
        ({"pixels": [["0.5"] * 28] * 28}, "valid number"),
        ({"pixels": [[True] * 28] * 28}, "valid number"),
        ({"pixels": [[2.0] * 28] * 28}, "[0, 1]"),
        ({"pixels": [[0.0] * 28] * 28}, "no ink"),
        ({"strokes": [[[1, 2], [3]]], "width": 10, "height": 10}, "xs has 2 values but ys has 1"),
        ({"strokes": [[[1, 2e9], [3, 4]]], "width": 10, "height": 10}, "outside"),
        ({"strokes": [[[1]]], "width": 10, "height": 10}, "at least 2"),
        ({"strokes": "abc", "width": 10, "height": 10}, "valid list"),
    ],
)
def test_bad_input_gets_422_with_a_clear_message(
    client: TestClient, body: dict[str, Any], needle: str
) -> None:
    res = client.post("/predict", json=body)
    assert res.status_code == 422, res.text
    assert needle in res.json()["detail"]
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "predict", "id": 7, **body}))
        reply = ws.receive_json()
    assert reply == {"type": "error", "id": 7, "code": "invalid_input", "message": reply["message"]}
    assert needle in reply["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(client: TestClient, literal: str) -> None:
    row = ", ".join(["0.5"] * 27 + [literal])
    raw = '{"pixels": [' + ", ".join([f"[{row}]"] * 28) + "]}"
    res = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert res.status_code == 422
    assert "finite number" in res.json()["detail"]


def test_malformed_json_and_oversized_bodies(client: TestClient) -> None:
    res = client.post("/predict", content=b'{"pixels": [[0.5,', headers={"content-type": "application/json"})
    assert res.status_code == 422
    assert "JSON" in res.json()["detail"]
    huge = b'{"pixels": [' + b"0.5," * (MAX_BODY_BYTES // 4) + b"0.5]}"
    res = client.post("/predict", content=huge, headers={"content-type": "application/json"})
    assert res.status_code == 413
    assert "larger than" in res.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no content-length: the limit counts streamed bytes
        yield b'{"pixels": ['
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"0.5," * 1024

    res = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert res.status_code == 413
    assert client.post("/predict", json=PIXELS).status_code == 200


# 100,000 levels: far past the ~1,000 Python's JSON parser follows, and 200 kB, under every size limit.
DEEP = 100_000


@pytest.mark.parametrize(
    "raw", ["[" * DEEP + "]" * DEEP, '{"a": ' * DEEP + "1" + "}" * DEEP], ids=["arrays", "objects"]
)
def test_deeply_nested_json_is_bad_input_on_both_transports(client: TestClient, raw: str) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_text(raw)
        reply = ws.receive_json()
        assert reply == {"type": "error", "id": None, "code": "invalid_json", "message": reply["message"]}
        assert "nesting is too deep" in reply["message"]
        ws.send_text(json.dumps({"type": "predict", "id": "after", **PIXELS}))
        assert ws.receive_json()["id"] == "after"  # the socket goes on serving
    for route in ("/predict", "/rounds"):
        res = client.post(route, content=raw, headers={"content-type": "application/json"})
        assert res.status_code == 422, res.text
        assert "nesting is too deep" in res.json()["detail"]
        assert [e["type"] for e in res.json()["errors"]] == ["json_invalid"]
    assert client.post("/predict", json=PIXELS).status_code == 200


def test_ws_protocol_errors_keep_the_socket_open(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_text("{nope")
        assert ws.receive_json()["code"] == "invalid_json"
        ws.send_text("[1, 2]")
        assert ws.receive_json()["code"] == "invalid_message"
        ws.send_text(json.dumps({"type": "hello", "id": 5}))
        assert ws.receive_json() == {
            "type": "error",
            "id": 5,
            "code": "unknown_type",
            "message": "unknown message type 'hello': expected 'predict' or 'deal'",
        }
        ws.send_text(json.dumps({"type": "predict", "id": {"deep": 1}, **PIXELS}))
        assert ws.receive_json()["code"] == "invalid_id"
        ws.send_bytes(b"\x00\x01binary")
        assert ws.receive_json()["code"] == "binary_not_supported"
        ws.send_text(json.dumps({"type": "predict", "id": "ok", **PIXELS}))
        assert ws.receive_json()["type"] == "prediction"


def test_ws_oversized_message_closes_with_1009(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "predict", "id": 1, "pixels": [[0.5] * 1000] * 1000}))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1009


def test_ws_rate_limit_drops_floods_and_recovers(client: TestClient, service: GuessmeService) -> None:
    import asyncio
    import time

    asyncio.run(
        service.configure({"ws_rate_per_s": 20, "ws_burst": 5, "model_uri": service.holder.configured_uri})
    )
    service.holder.current = tiny_model("3")
    msg = json.dumps({"type": "predict", "id": 0, **PIXELS})
    with client.websocket_connect("/ws") as ws:
        for _ in range(30):
            ws.send_text(msg)
        codes = [ws.receive_json().get("code", "ok") for _ in range(30)]
        assert codes.count("ok") <= 8
        assert codes.count("rate_limited") >= 22
        time.sleep(0.3)
        ws.send_text(msg)
        assert ws.receive_json()["type"] == "prediction"


def deal(client: TestClient, target: int | None = None) -> dict[str, Any]:
    """A round dealt over the socket, as the game gets it."""
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "deal", "id": 1, **({"target": target} if target is not None else {})})
        return ws.receive_json()


def stored(service: GuessmeService) -> list[dict[str, Any]]:
    from guessme_serve.rounds import shard_paths

    return [
        json.loads(line) for p in shard_paths(service.rounds.folder) for line in p.read_text().splitlines()
    ]


def test_rounds_are_dealt_stored_and_counted(client: TestClient, service: GuessmeService) -> None:
    dealt = deal(client)
    assert dealt["type"] == "round"
    assert dealt["id"] == 1
    assert 0 <= dealt["target"] <= 9
    probs = [0.05] * 8 + [0.1, 0.5]
    body = {
        **STROKES,
        "target": dealt["target"],
        "ticket": dealt["ticket"],
        "guess": 9,
        "probabilities": probs,
    }
    res = client.post("/rounds", json={**body, "player_id": "player-0001"})
    assert res.status_code == 201, res.text
    assert len(res.json()["id"]) == 32
    stats = client.get("/rounds/stats").json()
    assert stats["total"]["rounds"] == 1
    assert stats["by_model_version"]["3"]["rounds"] == 1
    assert client.get("/model").json()["live"]["rounds"] == 1
    (rec,) = stored(service)
    assert rec["model_uri"] == "models:/guessme-cnn/3"
    assert rec["model_version"] == "3"
    assert rec["target"] == dealt["target"]
    # The stored guess is the served model's reading of the drawing, not the client's claim.
    assert rec["guess"] == max(range(10), key=rec["probabilities"].__getitem__)
    assert rec["won"] is (rec["guess"] == rec["target"]) is res.json()["won"]
    assert rec["client_guess"] == 9
    assert len(rec["player"]) == 32
    assert "player-0001" not in json.dumps(rec)
    assert set(rec) == {
        "id", "created_at", "strokes", "width", "height", "target", "guess", "probabilities", "client_guess",
        "model_uri", "model_version", "won", "player", "session", "ticket", "ticket_issued_ms", "client",
    }  # fmt: skip


def test_client_chosen_targets_only_with_the_test_setting(
    client: TestClient, service: GuessmeService
) -> None:
    picked = {deal(client, target=4)["target"] for _ in range(12)}
    assert picked != {4}  # production: the server picks, whatever the game asks for
    service.apply(service.settings.__class__(test_client_targets=True))
    assert {deal(client, target=4)["target"] for _ in range(3)} == {4}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"target": 10}, "less than or equal to 9"),
        ({"probabilities": [0.1] * 9}, "at least 10"),
        ({"probabilities": [0.5] * 10}, "sum to 1"),
        ({"probabilities": [float("nan")] + [0.1] * 9}, "finite"),
        ({"strokes": None, "pixels": [[0.5] * 28] * 28}, "strokes"),
        ({"strokes": [[[1, 2], [3, 4]]], "width": 1, "height": 1}, "outside"),
        ({"strokes": [[[10, 900], [20, 30]]]}, "outside"),  # a drawing past the canvas edge
        ({"player_id": "../../etc/passwd"}, "player_id"),
        ({"model_version": "../../etc/passwd"}, "not a version this server has served"),
        ({"ticket": "v1.forged"}, "malformed"),
        ({"ticket_mac": "AAAA"}, "signature"),
        ({"target_off_by_one": True}, "the round dealt"),
        ({"ticket": None}, "ticket"),
    ],
)
def test_bad_rounds_are_refused_and_not_stored(
    client: TestClient, service: GuessmeService, change: dict[str, Any], needle: str
) -> None:
    dealt = deal(client)
    body = {
        **STROKES,
        "target": dealt["target"],
        "ticket": dealt["ticket"],
        "guess": 1,
        "probabilities": [0.1] * 10,
    }
    if change.pop("ticket_mac", None):
        body["ticket"] = dealt["ticket"].rsplit(".", 1)[0] + ".AAAA"
    if change.pop("target_off_by_one", None):
        body["target"] = (dealt["target"] + 1) % 10
    body.update(change)
    if body["ticket"] is None:
        del body["ticket"]
    res = client.post("/rounds", content=json.dumps(body), headers={"content-type": "application/json"})
    assert res.status_code in (403, 422), res.text
    assert needle in res.json()["detail"]
    assert stored(service) == []


def test_docs_and_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/healthz", "/model", "/rounds", "/rounds/stats", "/rounds/withdrawals"} <= set(
        spec["paths"]
    )
    assert client.get("/docs").status_code == 200
    assert client.get("/").status_code == 404  # no built front end in this test


def test_front_end_is_served_without_path_traversal(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>game</html>")
    (dist / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("secret")
    monkeypatch.setenv("GUESSME_FRONTEND_DIST", str(dist))
    assert client.get("/").text == "<html>game</html>"
    assert client.get("/assets/app.js").text == "console.log(1)"
    assert client.get("/play/level-2").text == "<html>game</html>"  # SPA route -> app shell
    assert client.get("/assets/missing.js").status_code == 404
    assert "secret" not in client.get("/..%2Fsecret.txt").text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=40,
)
drawing_like = st.fixed_dictionaries(
    {},
    optional={
        "pixels": json_values,
        "strokes": json_values,
        "width": json_values,
        "height": json_values,
        "type": st.sampled_from(["predict", "Predict", ""]) | json_values,
        "id": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=drawing_like | json_values)
def test_fuzzed_input_never_breaks_the_server(client: TestClient, body: Any) -> None:
    """Whatever JSON arrives: a 200 prediction or a 4xx with a message, never a 5xx or a hang."""
    raw = json.dumps(body)
    res = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert res.status_code in (200, 422), res.text
    assert _is_prediction(res.json()) if res.status_code == 200 else res.json()["detail"]
    with client.websocket_connect("/ws") as ws:
        ws.send_text(raw)
        reply = ws.receive_json()
        assert reply["type"] in ("prediction", "error")
        if reply["type"] == "error":
            assert reply["code"] in BAD_INPUT_CODES, reply
            assert reply["message"]
        ws.send_text(json.dumps({"type": "predict", "id": "after", **PIXELS}))
        assert ws.receive_json()["id"] == "after"
