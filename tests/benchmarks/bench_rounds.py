"""Saving rounds under a flood: what one client stores, how fast it is refused, what predictions feel.

One client (one address, four connections, as in issue 17) floods `POST /rounds` with ~80 kB drawings,
FLOOD_S seconds in all, each with a genuine ticket dealt over the WebSocket (the worst case: a script
that plays), plus posts with no ticket. Three phases, each against a fresh server:
  - rate: the default limits (a short-term rate per client and a daily quota);
  - quota: the rate limit lifted, a daily quota of QUOTA: what is stored must stop at the quota;
  - refusals: every post over its quota (no deals): the server's CPU per refused post, set against the
    app's own, measured in process (the rest is the HTTP server and the kernel).
Printed per phase: the counts by status (the deliberate posts without a ticket apart: answered 403 until
the client is over its limit, 429 after, since the limit is checked first, from the request head), rounds
stored vs. quota, disk used vs. budget (flagged EXCEEDED if it was passed), the 429 answer time (p50,
p99) and the server's CPU per post.

Predictions meanwhile: one player guesses over its WebSocket through the whole phase at the game's
cadence (a guess sent every SEND_INTERVAL_MS, read from apps/frontend/src/lib/useGuessSocket.ts, whatever
the answer time). The flood comes in FLOOD_BLOCKS blocks between idle ones (I F I F I F I), switched on
and off by the measuring process while the flooder stays connected, so each flood block's guess p50 is
compared with the idle blocks right before and after it, seconds apart: a shared machine's load drifts
within a minute by more than the effect measured. Per block: guesses, p50 and p99 (with fewer than 100
guesses, the p99 is the slowest), and the CPU (in cores) of the server, the flooder, the player and every
other process on the host (the noise); per phase and over the run: each flood block's ratio, their median,
min and max. The load average is printed at the start and the end.

The server is the real FastAPI app under uvicorn in its own process, with an untrained model of the
params.yaml architecture (same compute as a trained one). The flooder is a process of its own, and so
is the measuring player (this one): in one process the flood's threads would hold the player's GIL,
and a player is another machine. Figures only: nothing asserts a speed. Run:
`make bench PYTEST_ARGS="-k rounds"` (noisy on a shared machine). Sizes: BENCH_FLOOD_S, BENCH_IDLE_S.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import statistics
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.digit_strokes import draw
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.benchmark

REPO = Path(__file__).resolve().parents[2]
FLOOD_S = float(os.environ.get("BENCH_FLOOD_S", "20"))  # in all, over the FLOOD_BLOCKS of a phase
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "3"))  # each idle block (there is one more than flood blocks)
FLOOD_BLOCKS = 3
SETTLE_S = 0.3  # after switching the flood on or off: guesses go on, not counted in either block
CONNECTIONS = 4
QUOTA = 50
BUDGET_MB = 64.0
WS_LIMITS = {"ws_rate_per_s": 1e6, "ws_burst": 1e6}  # the socket limiter is not what is measured here


def _game_cadence_s() -> float:
    """The game's interval between live guesses while drawing (its one source: the front end)."""
    source = (REPO / "apps/frontend/src/lib/useGuessSocket.ts").read_text()
    match = re.search(r"export const SEND_INTERVAL_MS = (\d+);", source)
    assert match, "SEND_INTERVAL_MS not found in useGuessSocket.ts"
    return int(match[1]) / 1000


def _serve(port: int, folder: str, settings: dict[str, Any]) -> None:
    """The app as guessme_serve.standalone serves it (uvicorn's own loop set-up: uvloop, as in a Ray
    replica; no access log; the start-up heap frozen, as the replica and standalone do)."""
    import torch
    import uvicorn

    from guessme_core import GuessmeCNN
    from guessme_serve import heap
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
    heap.freeze_long_lived()
    uvicorn.run(create_api(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


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


class Player:
    """One player guessing over one WebSocket: a guess every `interval` s from the start of the last
    one (the game's throttle), one at a time; its cadence carries on from one block to the next."""

    def __init__(self, ws: ClientConnection, interval: float) -> None:
        self.ws = ws
        self.interval = interval
        self.body = json.dumps({"type": "predict", "id": 1, "strokes": draw(7), "width": 280, "height": 280})
        self.due = time.monotonic()

    def guess_for(self, seconds: float) -> list[float]:
        """The answer times (s) of the guesses sent in the next `seconds`."""
        end = time.monotonic() + seconds
        samples: list[float] = []
        while True:
            pause = self.due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            now = time.monotonic()
            if now >= end:  # the guess now due opens the next block
                return samples
            self.due = now + self.interval
            t0 = time.perf_counter()
            self.ws.send(self.body)
            self.ws.recv()
            samples.append(time.perf_counter() - t0)


def _flood(
    url: str,
    ws_url: str,
    payload: str,
    deal: bool,
    switch: Any,
    done: Any,
    connected: threading.Barrier,
    results: list[tuple[str, int, float]],
) -> None:
    with ExitStack() as stack:
        ws = stack.enter_context(connect(ws_url)) if deal else None
        client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        connected.wait()
        n = 0
        while not done.is_set():
            if not switch.wait(0.05):  # flood off: the connections stay open
                continue
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


def _flooder(
    url: str, ws_url: str, payload: str, deal: bool, switch: Any, done: Any, ready: Any, out: Any
) -> None:
    """The flooding client, in a process of its own: CONNECTIONS threads from one address, posting
    while `switch` is set, until `done`."""
    results: list[tuple[str, int, float]] = []
    connected = threading.Barrier(CONNECTIONS + 1)
    threads = [
        threading.Thread(target=_flood, args=(url, ws_url, payload, deal, switch, done, connected, results))
        for _ in range(CONNECTIONS)
    ]
    for t in threads:
        t.start()
    connected.wait()
    ready.set()
    for t in threads:
        t.join()
    out.put(results)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _host_busy_s() -> float:
    """CPU seconds the whole host has spent busy (not idle, not waiting for I/O), over all cores."""
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


@dataclass
class Block:
    kind: str  # "idle" or "flood"
    samples: list[float]
    cores: tuple[
        float, float, float, float
    ]  # CPU of the server, the flooder, the player, the rest of the host

    @property
    def p50(self) -> float:
        return _percentile(self.samples, 0.5)


class Meter:
    """CPU used over a span by the server, the flooder, the player (this process) and the rest of the host."""

    def __init__(self, server: int, flooder: int) -> None:
        self.pids = (server, flooder, os.getpid())
        self.start()

    def start(self) -> None:
        self._t, self._host = time.monotonic(), _host_busy_s()
        self._ours = [_cpu_s(pid) for pid in self.pids]

    def read(self) -> tuple[float, float, float, float]:
        """(server, flooder, player, the rest) in cores (CPU seconds per second) since start()."""
        wall = time.monotonic() - self._t
        ours = [_cpu_s(pid) - before for pid, before in zip(self.pids, self._ours, strict=True)]
        others = _host_busy_s() - self._host - sum(ours)
        return ours[0] / wall, ours[1] / wall, ours[2] / wall, max(others, 0.0) / wall


def _ratios(blocks: list[Block]) -> list[float]:
    """Each flood block's guess p50 over the mean p50 of the idle blocks right before and after it."""
    return [
        block.p50 / ((blocks[i - 1].p50 + blocks[i + 1].p50) / 2)
        for i, block in enumerate(blocks)
        if block.kind == "flood"
    ]


def _spread(ratios: list[float]) -> str:
    listed = ", ".join(f"{r:.2f}x" for r in ratios)
    return (
        f"{listed} (median {statistics.median(ratios):.2f}x, min {min(ratios):.2f}x, max {max(ratios):.2f}x)"
    )


def _blocks(player: Player, switch: Any, server: int, flooder: int) -> tuple[list[Block], float, float]:
    """I F I F ... I: the player guesses throughout, the flood is switched on for each F block.
    Returns the blocks and the server's CPU seconds and wall seconds while the flood was on."""
    meter = Meter(server, flooder)
    blocks: list[Block] = []
    flood_cpu = flood_wall = cpu0 = t0 = 0.0
    player.guess_for(1.0)  # warm-up: first guesses pay for lazy set-up
    for i in range(2 * FLOOD_BLOCKS + 1):
        flood = i % 2 == 1
        if flood:
            switch.set()
            cpu0, t0 = _cpu_s(server), time.monotonic()
        else:
            switch.clear()
        player.guess_for(SETTLE_S)
        if not flood and i > 0:  # the flood's last posts have been answered
            flood_cpu += _cpu_s(server) - cpu0
            flood_wall += time.monotonic() - t0
        meter.start()
        samples = player.guess_for(FLOOD_S / FLOOD_BLOCKS if flood else IDLE_S)
        blocks.append(Block("flood" if flood else "idle", samples, meter.read()))
    return blocks, flood_cpu, flood_wall


def _phase(name: str, settings: dict[str, Any], tmp: Path, deal: bool = True) -> list[float]:
    """One phase against a fresh server; prints its figures and returns its flood blocks' ratios."""
    from guessme_local.procs import free_port
    from guessme_serve.rounds import shard_paths

    folder = tmp / name
    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    server = ctx.Process(target=_serve, args=(port, str(folder), {**WS_LIMITS, **settings}), daemon=True)
    server.start()
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    payload = json.dumps({**_big_drawing(), "ticket": "__TICKET__", "target": "__TARGET__"})
    switch, done, ready, out = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    flooder = ctx.Process(
        target=_flooder, args=(url, ws_url, payload, deal, switch, done, ready, out), daemon=True
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        flooder.start()
        assert ready.wait(60), "the flooder did not connect"
        assert server.pid is not None
        assert flooder.pid is not None
        with connect(ws_url) as ws:
            blocks, flood_cpu, flood_wall = _blocks(
                Player(ws, _game_cadence_s()), switch, server.pid, flooder.pid
            )
        done.set()
        results: list[tuple[str, int, float]] = out.get(timeout=60)
        flooder.join(10)
        stored = sum(len(p.read_bytes().splitlines()) for p in shard_paths(folder))
        used_mb = sum(p.stat().st_size for p in shard_paths(folder)) / (1 << 20)
    finally:
        done.set()
        for proc in (flooder, server):
            if proc.pid is not None:
                proc.terminate()
                proc.join(10)
    codes = {
        kind: dict(sorted(Counter(code for k, code, _ in results if k == kind).items()))
        for kind in ("ticket", "no ticket")
    }
    refused = [s for _, code, s in results if code == 429]
    quota = settings.get("rounds_per_client_per_day", 200)
    included = "deals and guesses" if deal else "guesses"
    ratios = _ratios(blocks)
    print(
        f"\n[{name}] {_load()}\n"
        f"[{name}] {FLOOD_S:.0f} s of flood in {FLOOD_BLOCKS} blocks, {CONNECTIONS} connections, one client, "
        f"{len(payload) / 1024:.0f} kB a round: {len(results)} posts, by status {codes}\n"
        f"[{name}] stored {stored} rounds (daily quota {quota}), "
        f"{used_mb:.2f} MB on disk (budget {BUDGET_MB:g} MB{', EXCEEDED' if used_mb > BUDGET_MB else ''})\n"
        f"[{name}] 429 answer: p50 {_percentile(refused, 0.5):.2f} ms, "
        f"p99 {_percentile(refused, 0.99):.2f} ms\n"
        f"[{name}] server CPU during the flood blocks: {flood_cpu:.1f} s in {flood_wall:.1f} s "
        f"({flood_cpu / max(len(results), 1) * 1e3:.2f} ms per post, {included} included)\n"
        f"[{name}] live guess every {_game_cadence_s() * 1e3:.0f} ms, per block "
        "(guesses, p50, p99 in ms; CPU in cores of server / flooder / player / everything else on the host):"
    )
    for i, b in enumerate(blocks):
        print(
            f"[{name}]   {i + 1} {b.kind:5} {len(b.samples):3d} guesses  p50 {b.p50:6.2f}  "
            f"p99 {_percentile(b.samples, 0.99):6.2f}   CPU " + " / ".join(f"{c:.2f}" for c in b.cores)
        )
    print(f"[{name}] guess p50, flood block / mean of the idle blocks either side: {_spread(ratios)}")
    return ratios


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
    print(f"\n[start] {_load()}, {os.cpu_count()} cores")
    ratios = _phase("rate", {"player_disk_budget_mb": BUDGET_MB}, tmp_path)
    quota = {
        "player_disk_budget_mb": BUDGET_MB,
        "round_rate_per_s": 1e6,
        "round_burst": 1e6,
        "rounds_per_client_per_day": QUOTA,
    }
    ratios += _phase("quota", quota, tmp_path)
    # Refusals alone (no deals): what one refused post costs the server process, against what the app
    # itself spends on it; the rest is the HTTP server and the kernel.
    refusals = {"round_rate_per_s": 1e6, "round_burst": 1e6, "rounds_per_client_per_day": 0}
    ratios += _phase("refusals", refusals, tmp_path, deal=False)
    print(f"[refusals] the app's own CPU per refused post: {_app_refusal_us(tmp_path, 80_000):.0f} us")
    print(f"[all] guess p50 under the flood / idle, every flood block: {_spread(ratios)}")
    print(f"[end] {_load()}")
