"""The real app: Ray head + `serve deploy` of serve-config.yaml, the trained model from MLflow.

One Ray head for the session (fixture `serve_app`); tests that change the deployed model put the
trained model back before they end, so the order of tests does not matter.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from guessme_serve.api import MAX_BODY_BYTES

from .conftest import documented_ws_codes

pytestmark = pytest.mark.integration
BAD_INPUT_CODES = documented_ws_codes() - {"internal_error"}

STROKES = {"strokes": [[[140, 140, 141], [40, 140, 240]]], "width": 280, "height": 280}


@pytest.fixture(scope="module")
def known_digit(serve_app: Any, trained_model: Any, mnist_test_digits: Any) -> dict[str, Any]:
    """A MNIST test digit the served model classifies right (after checking it classifies most)."""
    xs, ys = mnist_test_digits
    right = []
    with httpx.Client(base_url=serve_app.url, timeout=30) as client:
        for x, y in zip(xs, ys, strict=True):
            body = client.post("/predict", json={"pixels": x.tolist()}).json()
            assert body["model_version"] == str(trained_model.version)
            right.append(body["digit"] == int(y))
    assert np.mean(right) >= 0.9, f"served model got {np.mean(right):.0%} of 40 test digits"
    i = right.index(True)
    return {"pixels": xs[i].tolist(), "label": int(ys[i])}


def assert_still_serving(serve_app: Any, digit: dict[str, Any]) -> None:
    """The proof after bad input: a correct prediction over REST and over a fresh WebSocket."""
    res = httpx.post(f"{serve_app.url}/predict", json={"pixels": digit["pixels"]}, timeout=30)
    assert res.status_code == 200
    assert res.json()["digit"] == digit["label"]
    with connect(serve_app.ws_url) as ws:
        ws.send(json.dumps({"type": "predict", "id": "proof", "pixels": digit["pixels"]}))
        reply = json.loads(ws.recv(timeout=30))
    assert reply["type"] == "prediction"
    assert reply["id"] == "proof"
    assert reply["digit"] == digit["label"]


def test_rest_predictions_model_info_and_docs(serve_app: Any, trained_model: Any, known_digit: Any) -> None:
    with httpx.Client(base_url=serve_app.url, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok", "model_loaded": True}
        res = client.post("/predict", json=STROKES)  # a vertical stroke: a drawn "1"
        assert res.status_code == 200
        assert len(res.json()["probabilities"]) == 10
        info = client.get("/model").json()
        assert info["model_uri"] == trained_model.uri
        assert info["model_version"] == str(trained_model.version)
        assert info["metrics"]["test_accuracy"] == pytest.approx(trained_model.test_accuracy, abs=1e-6)
        assert info["loaded_at"]
        assert info["last_error"] is None
        assert "/predict" in client.get("/openapi.json").json()["paths"]
        assert client.get("/docs").status_code == 200


def test_ws_predictions_and_every_error_keep_the_socket_open(serve_app: Any, known_digit: Any) -> None:
    good = {"type": "predict", "pixels": known_digit["pixels"]}
    cases: list[tuple[str | bytes, str]] = [
        ("{not json", "invalid_json"),
        ('"just a string"', "invalid_message"),
        (json.dumps({"type": "subscribe", "id": 1}), "unknown_type"),
        (json.dumps({"id": 2, "pixels": known_digit["pixels"]}), "unknown_type"),
        (json.dumps({"type": "predict", "id": 3, "pixels": "lots"}), "invalid_input"),
        (json.dumps({"type": "predict", "id": 4, "pixels": [[0.5] * 28] * 29}), "invalid_input"),
        (json.dumps({"type": "predict", "id": 5, "pixels": [[0.5] * 300] * 300}), "invalid_input"),
        ('{"type": "predict", "id": 6, "pixels": [[NaN, Infinity]]}', "invalid_input"),
        (json.dumps({"type": "predict", "id": 7, "strokes": [[[1], [1]]] * 500, "width": 9, "height": 9}),
         "invalid_input"),
        (b"\x89PNG binary frame", "binary_not_supported"),
    ]  # fmt: skip
    with connect(serve_app.ws_url) as ws:
        for i, (message, code) in enumerate(cases):
            ws.send(message)
            reply = json.loads(ws.recv(timeout=30))
            assert (reply["type"], reply["code"]) == ("error", code), (i, reply)
            assert reply["message"], reply
            ws.send(json.dumps({**good, "id": f"after-{i}"}))
            reply = json.loads(ws.recv(timeout=30))
            assert reply["id"] == f"after-{i}"
            assert reply["digit"] == known_digit["label"]


def test_ws_flood_is_rate_limited_and_10mb_message_closes_1009(serve_app: Any, known_digit: Any) -> None:
    msg = json.dumps({"type": "predict", "id": 0, "pixels": known_digit["pixels"]})
    with connect(serve_app.ws_url) as ws:
        for _ in range(400):
            ws.send(msg)
        replies = [json.loads(ws.recv(timeout=60)) for _ in range(400)]
        codes = [r.get("code", r["type"]) for r in replies]
        assert codes.count("rate_limited") >= 200, codes[:20]
        assert set(codes) == {"prediction", "rate_limited"}
    with connect(serve_app.ws_url, max_size=None) as ws:
        ws.send("x" * (10 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=60)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert_still_serving(serve_app, known_digit)


def test_rest_bad_input_gets_clear_errors(serve_app: Any, known_digit: Any) -> None:
    json_header = {"content-type": "application/json"}
    with httpx.Client(base_url=serve_app.url, timeout=60) as client:
        res = client.post("/predict", content=b'{"pixels": [[', headers=json_header)
        assert res.status_code == 422
        assert "JSON" in res.json()["detail"]
        deep = b"[" * 100_000 + b"]" * 100_000  # nesting past the JSON parser's recursion limit
        res = client.post("/predict", content=deep, headers=json_header)
        assert res.status_code == 422
        assert "nesting is too deep" in res.json()["detail"]
        with connect(serve_app.ws_url) as ws:
            ws.send(deep.decode())
            assert json.loads(ws.recv(timeout=30))["code"] == "invalid_json"
        res = client.post("/predict", content=b'{"pixels": [[NaN]]}', headers=json_header)
        assert res.status_code == 422
        assert "finite" in res.json()["detail"]
        res = client.post("/predict", json={"pixels": [[0.5] * 28] * 3})
        assert res.status_code == 422
        assert "shape 28x28" in res.json()["detail"]
        res = client.post("/predict", json={"strokes": {"a": 1}, "width": "wide", "height": None})
        assert res.status_code == 422
        assert res.json()["detail"]
        res = client.post("/predict", json={"pixels": [[0.5] * 1000] * 1000})  # a huge array
        assert res.status_code == 413
        assert str(MAX_BODY_BYTES) in res.json()["detail"]
        res = client.post("/predict", content=b"[" + b"1," * (5 * 1024 * 1024) + b"1]", headers=json_header)
        assert res.status_code == 413  # 10 MB
    assert_still_serving(serve_app, known_digit)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
            ["pixels", "strokes", "width", "height", "type", "id", "x"]), inner, max_size=4),
        max_leaves=30,
    )
)  # fmt: skip
def test_fuzzed_rest_and_ws_input(serve_app: Any, body: Any) -> None:
    raw = json.dumps(body)
    res = httpx.post(f"{serve_app.url}/predict", content=raw, headers={"content-type": "application/json"})
    assert res.status_code in (200, 422)
    assert res.json()
    with connect(serve_app.ws_url) as ws:
        ws.send(raw)
        reply = json.loads(ws.recv(timeout=30))
    assert reply["type"] in ("prediction", "error")
    assert reply["type"] == "prediction" or reply["code"] in BAD_INPUT_CODES, reply


def test_fuzzing_left_the_server_serving(serve_app: Any, known_digit: Any) -> None:
    assert_still_serving(serve_app, known_digit)


def test_rounds_are_dealt_stored_and_counted(serve_app: Any, trained_model: Any) -> None:
    from guessme_serve.rounds import shard_paths

    before = httpx.get(f"{serve_app.url}/rounds/stats").json()["by_model_version"]
    version = str(trained_model.version)
    played = before.get(version, {"rounds": 0, "won": 0})
    with connect(serve_app.ws_url) as ws:  # the game's socket deals the rounds (test setup: it may ask)
        dealt = []
        for i, wish in enumerate((1, 7)):
            ws.send(json.dumps({"type": "deal", "id": i, "target": wish}))
            dealt.append(json.loads(ws.recv()))
    assert [d["target"] for d in dealt] == [1, 7]
    body = {**STROKES, "guess": 1, "probabilities": [0.0] + [1.0] + [0.0] * 8}
    no_ticket = httpx.post(f"{serve_app.url}/rounds", json={**body, "target": 1})
    assert no_ticket.status_code == 422
    assert "ticket" in no_ticket.text
    created = [
        httpx.post(f"{serve_app.url}/rounds", json={**body, "target": d["target"], "ticket": d["ticket"]})
        for d in dealt
    ]
    assert [r.status_code for r in created] == [201, 201]
    reused = httpx.post(f"{serve_app.url}/rounds", json={**body, "target": 1, "ticket": dealt[0]["ticket"]})
    assert reused.status_code == 409
    stats = httpx.get(f"{serve_app.url}/rounds/stats").json()["by_model_version"][version]
    won = sum(r.json()["won"] for r in created)
    assert (stats["rounds"], stats["won"]) == (played["rounds"] + 2, played["won"] + won)
    assert httpx.get(f"{serve_app.url}/model").json()["live"]["rounds"] == stats["rounds"]
    lines = [
        json.loads(line) for p in shard_paths(serve_app.player_data) for line in p.read_text().splitlines()
    ]
    assert any(rec["id"] == created[0].json()["id"] and rec["model_version"] == version for rec in lines)


class Load:
    """REST and WebSocket clients predicting nonstop; every answer or failure is recorded."""

    def __init__(self, serve_app: Any, pixels: list[list[float]]) -> None:
        self.url, self.ws_url, self.pixels = serve_app.url, serve_app.ws_url, pixels
        self.answers: list[tuple[float, str, str]] = []  # (time, client kind, model_version)
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._rest) for _ in range(2)]
        self._threads += [threading.Thread(target=self._ws) for _ in range(2)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _record(self, kind: str, body: dict[str, Any]) -> None:
        if body.get("type", "prediction") != "prediction" or "model_version" not in body:
            self.failures.append(f"{kind}: {body}")
        else:
            self.answers.append((time.monotonic(), kind, body["model_version"]))

    def _rest(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    res = client.post("/predict", json={"pixels": self.pixels})
                    self._record(
                        "rest", res.json() if res.status_code == 200 else {"status": res.status_code}
                    )
                except Exception as exc:  # a failed request is what this test looks for
                    self.failures.append(f"rest: {exc!r}")

    def _ws(self) -> None:
        try:
            with connect(self.ws_url) as ws:
                i = 0
                while not self._stop.is_set():
                    i += 1
                    ws.send(json.dumps({"type": "predict", "id": i, "pixels": self.pixels}))
                    self._record("ws", json.loads(ws.recv(timeout=30)))
                    time.sleep(0.03)  # within the per-connection rate limit
        except Exception as exc:
            self.failures.append(f"ws: {exc!r}")


def test_model_swap_under_load_fails_no_request(
    serve_app: Any, trained_model: Any, second_model_version: Any, known_digit: Any
) -> None:
    old, new = str(trained_model.version), str(second_model_version.version)
    try:
        with Load(serve_app, known_digit["pixels"]) as load:
            time.sleep(1.0)
            serve_app.deploy(second_model_version.uri)  # user_config only: in-place reconfigure()
            swapped = time.monotonic()  # /model serves the new version: every replica reconfigured
            time.sleep(2.0)
            back_started = time.monotonic()
            serve_app.deploy(trained_model.uri)  # and back, still under load
            back = time.monotonic()
            time.sleep(1.5)
        assert load.failures == [], load.failures[:5]
        assert len(load.answers) > 100
        during = [(k, v) for when, k, v in load.answers if swapped + 0.3 <= when < back_started]
        after = [(k, v) for when, k, v in load.answers if back + 0.3 <= when]
        assert {v for _, v in during} == {new}, "answers switch to the new model_version"
        assert {k for k, _ in during} == {"rest", "ws"}
        assert {v for _, v in after} == {old}, "and back"
        assert {v for _, kind, v in load.answers if kind == "ws"} == {old, new}, "the same sockets saw both"
    finally:
        serve_app.deploy(trained_model.uri)


def test_load_failure_keeps_the_old_model(serve_app: Any, trained_model: Any, known_digit: Any) -> None:
    try:
        serve_app.deploy("models:/guessme-cnn/9999", wait_model=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = httpx.get(f"{serve_app.url}/model").json()
            if info["last_error"]:
                break
            time.sleep(0.3)
        assert "models:/guessme-cnn/9999" in info["last_error"]
        assert info["model_version"] == str(trained_model.version)
        assert_still_serving(serve_app, known_digit)
    finally:
        serve_app.deploy(trained_model.uri)
    assert httpx.get(f"{serve_app.url}/model").json()["last_error"] is None


def test_empty_model_uri_answers_503_and_stays_healthy(serve_app: Any, trained_model: Any) -> None:
    try:
        serve_app.deploy("")
        res = httpx.post(f"{serve_app.url}/predict", json=STROKES)
        assert res.status_code == 503
        assert "no model is loaded" in res.json()["detail"]
        assert httpx.get(f"{serve_app.url}/healthz").json() == {"status": "ok", "model_loaded": False}
    finally:
        serve_app.deploy(trained_model.uri)
    assert httpx.post(f"{serve_app.url}/predict", json=STROKES).status_code == 200
