"""Saving rounds under a flood: what one client stores, how fast it is refused, what predictions feel.

One client (one address, four connections, as in issue 17) floods `POST /rounds` for FLOOD_S seconds
with ~80 kB drawings, each with a genuine ticket dealt over the WebSocket (the worst case: a script
that plays), plus posts with no ticket. Printed, per phase:
  - rate: the default limits (a short-term rate per client and a daily quota);
  - quota: the rate limit lifted, a daily quota of QUOTA: what is stored must stop at the quota;
the counts by status (posts with a ticket and the deliberate posts without one apart: those are
answered 403 until the client is over its limit, 429 after, since the limit is checked first, from
the request head), rounds stored vs. quota, disk used vs. budget, the 429 answer time (p50, p99), the
server's CPU time per post during the flood, and the live-guess latency (WebSocket predict, p50)
during the flood vs. idle, measured in the same run; idle is measured before and after the flood, and
how far those two differ shows the machine's own noise. A third phase, refusals only (no deals),
sets the server's CPU per refused post against the app's own, measured in process.
The server is the real FastAPI app under uvicorn in its own process, with an untrained model of the
params.yaml architecture (same compute as a trained one); the flooding client is a process of its own
too, apart from the player measuring guesses (a player is another machine: in one process the flood's
threads would hold the measuring thread's GIL). Figures only: nothing asserts a speed. Run:
`make bench PYTEST_ARGS="-k rounds"` (noisy on a shared machine).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.digit_strokes import draw
from websockets.sync.client import connect

pytestmark = pytest.mark.benchmark

FLOOD_S = float(os.environ.get("BENCH_FLOOD_S", "20"))
CONNECTIONS = 4
QUOTA = 50
BUDGET_MB = 64.0
WS_LIMITS = {"ws_rate_per_s": 1e6, "ws_burst": 1e6}  # the socket limiter is not what is measured here


def _serve(port: int, folder: str, settings: dict[str, Any]) -> None:
    import asyncio

    import torch
    import uvicorn

    from guessme_core import GuessmeCNN
    from guessme_serve.api import bind_service, create_api
    from guessme_serve.model_holder import LoadedModel, ModelHolder
    from guessme_serve.rounds import RoundStore
    from guessme_serve.service import GuessmeService, ServiceSettings
    from guessme_serve.tickets import TicketSigner
    from guessme_train.params import load_params

    torch.set_num_threads(1)
    width = load_params(Path(__file__).resolve().parents[2] / "params.yaml").model.width
    model = LoadedModel("models:/guessme-cnn/1", "1", GuessmeCNN(width=width).eval(), "now", {})
    service = GuessmeService(ModelHolder(), RoundStore(Path(folder)), TicketSigner(os.urandom(32)))
    service.holder.current = model
    service.holder.remember(model)
    service.apply(ServiceSettings(**settings))
    bind_service(service)
    asyncio.run(uvicorn.Server(uvicorn.Config(create_api(), port=port, log_level="error")).serve())


def _big_drawing() -> dict[str, Any]:
    """A long scribble of ~80 kB: many points, like the issue's flood (133 kB there)."""
    strokes = [draw(d % 10, height=150, wobble=0.02, seed=d) for d in range(40)]
    pts = [s for group in strokes for s in group]
    dense = [
        [[x + i * 1e-3 for x in xs for i in range(4)], [y for y in ys for _ in range(4)]] for xs, ys in pts
    ]
    return {"strokes": dense[:60], "width": 280, "height": 280, "guess": 1, "probabilities": [0.1] * 10}


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3 if ordered else float("nan")


def _predict_p50(ws_url: str, seconds: float, stop: threading.Event | None = None) -> float:
    body = json.dumps({"type": "predict", "id": 1, "strokes": draw(7), "width": 280, "height": 280})
    samples: list[float] = []
    with connect(ws_url) as ws:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (stop and stop.is_set()):
            t0 = time.perf_counter()
            ws.send(body)
            ws.recv()
            samples.append(time.perf_counter() - t0)
            time.sleep(0.05)  # a player's pace: ~8 guesses a second at most
    return _percentile(samples, 0.5)


def _flood(
    url: str, ws_url: str, seconds: float, payload: str, deal: bool, results: list[tuple[str, int, float]]
) -> None:
    with ExitStack() as stack:
        ws = stack.enter_context(connect(ws_url)) if deal else None
        client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
            ticket, target = "", 1
            if ws is not None:  # a script that plays: a genuine ticket for every post
                ws.send(json.dumps({"type": "deal", "id": n}))
                dealt = json.loads(ws.recv())
                ticket, target = dealt["ticket"], dealt["target"]
            if n % 10 == 0:  # now and then, a post without any ticket
                ticket = ""
            body = payload.replace('"__TICKET__"', json.dumps(ticket)).replace('"__TARGET__"', str(target))
            t0 = time.perf_counter()
            res = client.post("/rounds", content=body, headers={"content-type": "application/json"})
            results.append(("ticket" if ticket else "no ticket", res.status_code, time.perf_counter() - t0))


def _flooder(url: str, ws_url: str, seconds: float, payload: str, deal: bool, go: Any, out: Any) -> None:
    """The flooding client, in a process of its own: CONNECTIONS threads from one address."""
    results: list[tuple[str, int, float]] = []
    threads = [
        threading.Thread(target=_flood, args=(url, ws_url, seconds, payload, deal, results))
        for _ in range(CONNECTIONS)
    ]
    go.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(results)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _phase(name: str, settings: dict[str, Any], tmp: Path, deal: bool = True) -> None:
    from guessme_local.procs import free_port
    from guessme_serve.rounds import shard_paths

    folder = tmp / name
    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    server = ctx.Process(target=_serve, args=(port, str(folder), {**WS_LIMITS, **settings}), daemon=True)
    server.start()
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        idle = _predict_p50(ws_url, 3.0)
        payload = json.dumps({**_big_drawing(), "ticket": "__TICKET__", "target": "__TARGET__"})
        go, out = ctx.Event(), ctx.Queue()
        flooder = ctx.Process(
            target=_flooder, args=(url, ws_url, FLOOD_S, payload, deal, go, out), daemon=True
        )
        flooder.start()
        time.sleep(3.0)  # the flooder has imported and waits
        assert server.pid is not None
        cpu0, t0 = _cpu_s(server.pid), time.monotonic()
        go.set()
        time.sleep(1.0)  # the flood is under way
        loaded = _predict_p50(ws_url, FLOOD_S - 2.0)
        results: list[tuple[str, int, float]] = out.get(timeout=FLOOD_S + 60)
        cpu, wall = _cpu_s(server.pid) - cpu0, time.monotonic() - t0
        flooder.join(10)
        idle_after = _predict_p50(ws_url, 3.0)
        stored = sum(len(p.read_bytes().splitlines()) for p in shard_paths(folder))
        used_mb = sum(p.stat().st_size for p in shard_paths(folder)) / (1 << 20)
        codes = {
            kind: dict(sorted(Counter(code for k, code, _ in results if k == kind).items()))
            for kind in ("ticket", "no ticket")
        }
        refused = [s for _, code, s in results if code == 429]
        quota = settings.get("rounds_per_client_per_day", 200)
        p50, p99 = _percentile(refused, 0.5), _percentile(refused, 0.99)
        included = "deals and guesses" if deal else "guesses"
        print(
            f"\n[{name}] {FLOOD_S:.0f} s, {CONNECTIONS} connections, one client, "
            f"{len(payload) / 1024:.0f} kB a round: {len(results)} posts, by status {codes}\n"
            f"[{name}] stored {stored} rounds (daily quota {quota}), "
            f"{used_mb:.2f} MB on disk (budget {BUDGET_MB:g} MB)\n"
            f"[{name}] 429 answer: p50 {p50:.2f} ms, p99 {p99:.2f} ms\n"
            f"[{name}] server CPU during the flood: {cpu:.1f} s in {wall:.1f} s "
            f"({cpu / max(len(results), 1) * 1e3:.2f} ms per post, {included} included)\n"
            f"[{name}] live guess p50: idle {idle:.2f} ms before, {idle_after:.2f} ms after; during the "
            f"flood {loaded:.2f} ms (ratio {loaded / ((idle + idle_after) / 2):.2f}x their mean)"
        )
    finally:
        server.terminate()
        server.join(10)


def _app_refusal_us(tmp: Path, body_bytes: int, n: int = 5000) -> float:
    """CPU microseconds the app itself spends on one POST /rounds refused from its head (over the daily
    quota): the ASGI app called in process, no server, no socket; its body is never asked for."""
    import asyncio

    from guessme_serve.api import bind_service, create_api
    from guessme_serve.model_holder import ModelHolder
    from guessme_serve.rounds import RoundStore
    from guessme_serve.service import GuessmeService, ServiceSettings
    from guessme_serve.tickets import TicketSigner

    service = GuessmeService(ModelHolder(), RoundStore(tmp / "in-process"), TicketSigner(os.urandom(32)))
    service.apply(ServiceSettings(rounds_per_client_per_day=0))
    bind_service(service)
    app = create_api()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(body_bytes).encode())]
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/rounds",
        "headers": headers,
        "client": ("10.0.0.1", 1),
    }
    scope |= {"asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http", "query_string": b""}
    scope |= {"raw_path": b"/rounds", "root_path": "", "server": ("127.0.0.1", 8000)}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b" " * body_bytes, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run(count: int) -> None:
        for _ in range(count):
            await app(dict(scope), receive, send)

    asyncio.run(run(200))  # warm up
    t0 = time.process_time()
    asyncio.run(run(n))
    spent = time.process_time() - t0
    assert set(statuses) == {429}
    return spent / n * 1e6


def test_a_flood_of_saved_rounds(tmp_path: Path) -> None:
    _phase("rate", {"player_disk_budget_mb": BUDGET_MB}, tmp_path)
    _phase(
        "quota",
        {
            "player_disk_budget_mb": BUDGET_MB,
            "round_rate_per_s": 1e6,
            "round_burst": 1e6,
            "rounds_per_client_per_day": QUOTA,
        },
        tmp_path,
    )
    # Refusals alone (no deals): what one refused post costs the server process, against what the app
    # itself spends on it; the rest is the HTTP server and the kernel.
    refusals = {"round_rate_per_s": 1e6, "round_burst": 1e6, "rounds_per_client_per_day": 0}
    _phase("refusals", refusals, tmp_path, deal=False)
    print(f"[refusals] the app's own CPU per refused post: {_app_refusal_us(tmp_path, 80_000):.0f} us")
