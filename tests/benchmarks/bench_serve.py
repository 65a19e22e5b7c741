"""Serving latency: what Ray Serve adds over the same app under plain uvicorn, in one run.

Prints p50, p99 and requests per second for
  - bare: preprocessing + forward in-process (the work itself), and the WebSocket handler in-process;
  - plain: the same FastAPI app (guessme_serve.standalone) under uvicorn, REST and WebSocket;
  - ray: the Ray Serve app (serve-config.yaml on a local Ray head), REST and WebSocket;
and the ratios ray / plain. Goals on 2 cores: WebSocket p50 within 2x and p99 < 10 ms, REST p50
within 3x. Plain and Ray are measured in alternating blocks, so load from other processes on a
shared machine hits both alike. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.benchmark

BLOCKS = 12  # alternating blocks per target
PER_BLOCK = 40  # sequential requests per block and protocol
THROUGHPUT_S = 3.0  # seconds of concurrent load per target and protocol
CLIENTS = 4
UNLIMITED = {"ws_rate_per_s": 1e6, "ws_burst": 1e6}  # the benchmark measures speed, not the limiter


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": ordered[len(ordered) // 2] * 1e3,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
        "rps": len(ordered) / sum(ordered),
    }


def _time(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


class Target:
    """One server under test: a keep-alive REST client and an open WebSocket."""

    def __init__(self, name: str, url: str, body: dict[str, Any]) -> None:
        self.name, self.url, self.body = name, url, body
        self.rest = httpx.Client(base_url=url, timeout=30)
        self.ws: ClientConnection = connect(url.replace("http", "ws", 1) + "/ws")
        self.msg = json.dumps({"type": "predict", "id": 1, **body})
        self.samples: dict[str, list[float]] = {"rest": [], "ws": []}

    def rest_once(self) -> None:
        res = self.rest.post("/predict", json=self.body)
        assert res.status_code == 200, res.text

    def ws_once(self) -> None:
        self.ws.send(self.msg)
        reply = self.ws.recv(timeout=30)
        assert '"prediction"' in reply, reply

    def close(self) -> None:
        self.rest.close()
        self.ws.close()


def _throughput(url: str, body: dict[str, Any], protocol: str) -> float:
    """Requests per second with CLIENTS concurrent clients for THROUGHPUT_S seconds."""
    done = [0] * CLIENTS
    stop = time.monotonic() + THROUGHPUT_S

    def client(i: int) -> None:
        if protocol == "rest":
            with httpx.Client(base_url=url, timeout=30) as c:
                while time.monotonic() < stop:
                    assert c.post("/predict", json=body).status_code == 200
                    done[i] += 1
        else:
            msg = json.dumps({"type": "predict", "id": i, **body})
            with connect(url.replace("http", "ws", 1) + "/ws") as ws:
                while time.monotonic() < stop:
                    ws.send(msg)
                    assert '"prediction"' in ws.recv(timeout=30)
                    done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - t0)


@pytest.fixture
def plain_server(trained_model: Any, mlflow_server: str, run_dir: Path) -> Iterator[str]:
    """The same app under plain uvicorn (one process, same model, same settings)."""
    from guessme_local.procs import free_port, start_background, stop_group, wait_http

    port = free_port()
    log = run_dir / "bench-plain-uvicorn.log"
    cmd = [
        sys.executable, "-m", "guessme_serve.standalone",
        "--port", str(port), "--model-uri", trained_model.uri,
        "--ws-rate-per-s", str(UNLIMITED["ws_rate_per_s"]), "--ws-burst", str(UNLIMITED["ws_burst"]),
    ]  # fmt: skip
    proc = start_background(cmd, log, {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server})
    try:
        wait_http(
            f"http://127.0.0.1:{port}/healthz", "plain uvicorn", 120, log, alive=lambda: proc.poll() is None
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc.pid, timeout=5)


def test_serving_latency(
    serve_app: Any, plain_server: str, trained_model: Any, mnist_test_digits: Any
) -> None:
    from guessme_core import pixels_to_image
    from guessme_serve.model_holder import load_from_registry
    from guessme_serve.service import GuessmeService

    xs, _ = mnist_test_digits
    body = {"pixels": xs[0].tolist()}
    rows: dict[str, dict[str, float]] = {}

    # The work itself, in this process (one torch thread, like the servers).
    import torch

    torch.set_num_threads(1)
    model = load_from_registry(trained_model.uri)
    bare = _time(lambda: model.probabilities([pixels_to_image(body["pixels"])]), 300)
    service = GuessmeService()
    service.holder.current = model
    msg = json.dumps({"type": "predict", "id": 1, **body})
    handler = _time(lambda: service.ws_reply(msg), 300)
    rows["bare preprocess+forward"] = _summary(bare[50:])
    rows["bare WS handler (json+validate+predict)"] = _summary(handler[50:])

    serve_app.deploy(trained_model.uri, **UNLIMITED)
    try:
        targets = [Target("plain", plain_server, body), Target("ray", serve_app.url, body)]
        for t in targets:  # warm-up: connections, caches, lazy imports
            _time(t.rest_once, 30)
            _time(t.ws_once, 30)
        for block in range(BLOCKS):
            for t in targets if block % 2 == 0 else targets[::-1]:
                t.samples["rest"] += _time(t.rest_once, PER_BLOCK)
                t.samples["ws"] += _time(t.ws_once, PER_BLOCK)
        for t in targets:
            for protocol in ("rest", "ws"):
                rows[f"{t.name} {protocol}"] = _summary(t.samples[protocol])
            t.close()
        for t in targets:
            for protocol in ("rest", "ws"):
                rows[f"{t.name} {protocol}"]["conc_rps"] = _throughput(t.url, body, protocol)
    finally:
        serve_app.deploy(trained_model.uri)  # the default rate limit again

    print(f"\nServing latency, {len(targets[0].samples['rest'])} sequential requests per row "
          f"(alternating blocks); concurrent = {CLIENTS} clients for {THROUGHPUT_S:g} s")  # fmt: skip
    print(f"{'':42s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/s':>8s} {'conc req/s':>11s}")
    for name, row in rows.items():
        conc = f"{row['conc_rps']:11.0f}" if "conc_rps" in row else f"{'':11s}"
        print(f"{name:42s} {row['p50']:8.2f} {row['p99']:8.2f} {row['rps']:8.0f} {conc}")
    for protocol, goal in (("ws", 2.0), ("rest", 3.0)):
        ray, plain = rows[f"ray {protocol}"], rows[f"plain {protocol}"]
        print(
            f"ratio ray/plain {protocol:4s}: p50 {ray['p50'] / plain['p50']:.2f}x (goal <= {goal:g}x), "
            f"p99 {ray['p99'] / plain['p99']:.2f}x, throughput {ray['conc_rps'] / plain['conc_rps']:.2f}x"
        )
    print(f"ray ws p99 {rows['ray ws']['p99']:.2f} ms (goal < 10 ms); "
          f"median of bare work {statistics.median(bare) * 1e3:.2f} ms")  # fmt: skip
    assert all(row["p50"] > 0 for row in rows.values())
