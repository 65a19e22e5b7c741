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
p99) as the flooders saw it (their four threads share one GIL: it includes their own waits) and the
server's CPU per post.

Predictions meanwhile: one player guesses over its WebSocket through the whole phase at the game's
cadence (a guess sent every SEND_INTERVAL_MS, read from apps/frontend/src/lib/useGuessSocket.ts, whatever
the answer time). The flood comes in blocks between idle ones (SCHEDULE: I F I B I F I B I), switched on
and off by the measuring process while the flooders stay connected, so each flood block's guess p50 is
compared with the idle blocks right before and after it, seconds apart: a shared machine's load drifts
within a minute by more than the effect measured. Two kinds of flood block, by the flooder's priority:
  - flood (F): the flooder runs like any process, so on this 2-core host it takes its CPU (0.6-1.0
    of a core) from the server's: under py-spy, the server's event loop is seen waiting inside its
    own response writes, the moment each answer wakes a flooding thread;
  - flood-bg (B): the flooder runs at SCHED_IDLE, on CPU time nothing else on the host wants, as a
    client on another machine would; it then floods only as fast as the idle CPU lets it (the post
    rate of each block is printed, to compare).
Per block: posts per second, guesses, p50 and p99 (with fewer than 100 guesses, the p99 is the slowest),
the 429 answer time of a probe the player sends after each guess (one more post of the flood's drawing
from the same address, timed by a process that does little else; it counts against that client's limits
too, so the rate phase stores a few rounds fewer), and the CPU (in cores) of the server,
the flooders, the player and every other process on the host (the noise). Per kind, in each phase and
over the run: each block's ratio, their median, min and max. The load average at the start and the end.

The server is the real FastAPI app under uvicorn in its own process, with an untrained model of the
params.yaml architecture (same compute as a trained one). The flooders are processes of their own, and
so is the measuring player (this one): in one process the flood's threads would hold the player's GIL,
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
FLOOD_S = float(os.environ.get("BENCH_FLOOD_S", "20"))  # in all, over the flood blocks of a phase
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "3"))  # each idle block
FLOODS = {"flood": False, "flood-bg": True}  # a flood block's kind: is its flooder at SCHED_IDLE
SCHEDULE = ("idle", "flood", "idle", "flood-bg", "idle", "flood", "idle", "flood-bg", "idle")
SETTLE_S = 0.3  # after switching the flood on or off: guesses go on, not counted in either block
CONNECTIONS = 4
QUOTA = 50
BUDGET_MB = 64.0
WS_LIMITS = {"ws_rate_per_s": 1e6, "ws_burst": 1e6}  # the socket limiter is not what is measured here

Post = tuple[str, int, float, float]  # ticket or not, status, answer time (s), when answered (monotonic)


def _game_cadence_s() -> float:
    """The game's interval between live guesses while drawing (its one source: the front end)."""
    source = (REPO / "apps/frontend/src/lib/useGuessSocket.ts").read_text()
    match = re.search(r"export const SEND_INTERVAL_MS = (\d+);", source)
    assert match, "SEND_INTERVAL_MS not found in useGuessSocket.ts"
    return int(match[1]) / 1000


def _model_file(tmp: Path) -> Path:
    """The CNN as a replica serves it: its checked ONNX copy (untrained weights: the cost is the same)."""
    path = tmp / "model.onnx"
    if not path.exists():
        import torch

        from guessme_core import GuessmeCNN
        from guessme_core.onnx_export import save_onnx_copy
        from guessme_train.params import load_params

        width = load_params(REPO / "params.yaml").model.width
        torch.manual_seed(0)
        save_onnx_copy(GuessmeCNN(width=width).eval(), "the bench's CNN", path)
    return path


def _serve(port: int, folder: str, settings: dict[str, Any], model_path: str) -> None:
    """The app as guessme_serve.standalone serves it (uvicorn's own loop set-up: uvloop, as in a Ray
    replica; no access log; the start-up heap frozen, as the replica and standalone do), with the
    model in ONNX Runtime and no torch, as in a replica."""
    import uvicorn

    from guessme_core.onnx_model import OnnxModel
    from guessme_serve import heap, micro_batch
    from guessme_serve.api import bind_service, create_api
    from guessme_serve.model_holder import LoadedModel, ModelHolder
    from guessme_serve.rounds import RoundStore
    from guessme_serve.service import GuessmeService, ServiceSettings
    from guessme_serve.tickets import TicketSigner

    micro_batch.hand_over_the_gil_quickly()
    model = LoadedModel("models:/guessme-cnn/1", "1", OnnxModel(Path(model_path).read_bytes()), "now", {})
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
    one (the game's throttle), one at a time; its cadence carries on from one block to the next.
    After each guess, a probe: one more post of the flood's drawing from the flooding client's address,
    timed here, in a process that does little else (the flooders' own times include waits for their
    own GIL and CPU); only its 429 answers are kept."""

    def __init__(self, ws: ClientConnection, interval: float, probe: httpx.Client, probe_body: str) -> None:
        self.ws = ws
        self.interval = interval
        self.body = json.dumps({"type": "predict", "id": 1, "strokes": draw(7), "width": 280, "height": 280})
        self.probe = probe
        self.probe_body = probe_body
        self.due = time.monotonic()

    def guess_for(self, seconds: float) -> tuple[list[float], list[float]]:
        """The answer times (s) of the guesses sent in the next `seconds`, and of the probes refused 429."""
        end = time.monotonic() + seconds
        guesses: list[float] = []
        refusals: list[float] = []
        while True:
            pause = self.due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            now = time.monotonic()
            if now >= end:  # the guess now due opens the next block
                return guesses, refusals
            self.due = now + self.interval
            t0 = time.perf_counter()
            self.ws.send(self.body)
            self.ws.recv()
            guesses.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            res = self.probe.post(
                "/rounds", content=self.probe_body, headers={"content-type": "application/json"}
            )
            if res.status_code == 429:
                refusals.append(time.perf_counter() - t0)


def _flood(
    url: str,
    ws_url: str,
    payload: str,
    deal: bool,
    switch: Any,
    done: Any,
    connected: threading.Barrier,
    posts: list[Post],
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
            answered = time.perf_counter() - t0
            posts.append(("ticket" if ticket else "no ticket", res.status_code, answered, time.monotonic()))


def _flooder(
    url: str, ws_url: str, payload: str, deal: bool, background: bool, events: Any, out: Any
) -> None:
    """A flooding client, in a process of its own: CONNECTIONS threads from one address, posting while
    its switch is on, until done; `background`: at SCHED_IDLE (Linux; its threads inherit the policy)."""
    switch, done, ready = events
    if background:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    posts: list[Post] = []
    connected = threading.Barrier(CONNECTIONS + 1)
    threads = [
        threading.Thread(target=_flood, args=(url, ws_url, payload, deal, switch, done, connected, posts))
        for _ in range(CONNECTIONS)
    ]
    for t in threads:
        t.start()
    connected.wait()
    ready.set()
    for t in threads:
        t.join()
    out.put(posts)


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
    kind: str  # one of SCHEDULE's
    samples: list[float]  # the player's answer times (s)
    refusals: list[float]  # the probes' 429 answer times (s)
    cores: tuple[float, ...]  # CPU of the server, the flooders, the player, the rest of the host
    start: float  # time.monotonic() at its start and end
    end: float

    @property
    def p50(self) -> float:
        return _percentile(self.samples, 0.5)


class Meter:
    """CPU used over a span by the server, the flooders, the player (this process), the rest of the host."""

    def __init__(self, server: int, flooders: list[int]) -> None:
        self.pids = (server, *flooders, os.getpid())
        self.start()

    def start(self) -> None:
        self._t, self._host = time.monotonic(), _host_busy_s()
        self._ours = [_cpu_s(pid) for pid in self.pids]

    def read(self) -> tuple[float, ...]:
        """(server, flooders, player, the rest) in cores (CPU seconds per second) since start()."""
        wall = time.monotonic() - self._t
        ours = [_cpu_s(pid) - before for pid, before in zip(self.pids, self._ours, strict=True)]
        others = max(_host_busy_s() - self._host - sum(ours), 0.0)
        return ours[0] / wall, sum(ours[1:-1]) / wall, ours[-1] / wall, others / wall


def _ratios(blocks: list[Block], kind: str) -> list[float]:
    """Each `kind` block's guess p50 over the mean p50 of the idle blocks right before and after it."""
    return [
        block.p50 / ((blocks[i - 1].p50 + blocks[i + 1].p50) / 2)
        for i, block in enumerate(blocks)
        if block.kind == kind
    ]


def _spread(ratios: list[float]) -> str:
    listed = ", ".join(f"{r:.2f}x" for r in ratios)
    median, low, high = statistics.median(ratios), min(ratios), max(ratios)
    return f"{listed} (median {median:.2f}x, min {low:.2f}x, max {high:.2f}x)"


def _blocks(
    player: Player, switches: dict[str, Any], server: int, flooders: list[int]
) -> tuple[list[Block], float]:
    """The SCHEDULE's blocks: the player guesses throughout; a flood block switches its flooder on.
    Returns the blocks and the server's CPU seconds while a flood was on (until its last answers)."""
    meter = Meter(server, flooders)
    blocks: list[Block] = []
    flood_cpu = cpu0 = 0.0
    flood_s = FLOOD_S / sum(kind in FLOODS for kind in SCHEDULE)
    player.guess_for(1.0)  # warm-up: first guesses pay for lazy set-up
    for i, kind in enumerate(SCHEDULE):
        for name, switch in switches.items():
            if name == kind:
                switch.set()
            else:
                switch.clear()
        if kind in FLOODS:
            cpu0 = _cpu_s(server)
        player.guess_for(SETTLE_S)
        if i > 0 and SCHEDULE[i - 1] in FLOODS:  # the flood before has had its last answers
            flood_cpu += _cpu_s(server) - cpu0
        meter.start()
        start = time.monotonic()
        samples, refusals = player.guess_for(flood_s if kind in FLOODS else IDLE_S)
        blocks.append(Block(kind, samples, refusals, meter.read(), start, time.monotonic()))
    return blocks, flood_cpu


def _phase(name: str, settings: dict[str, Any], tmp: Path, deal: bool = True) -> dict[str, list[float]]:
    """One phase against a fresh server; prints its figures and returns its flood blocks' ratios by kind."""
    from guessme_local.procs import free_port
    from guessme_serve.rounds import shard_paths

    folder = tmp / name
    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    model = str(_model_file(tmp))
    server = ctx.Process(
        target=_serve, args=(port, str(folder), {**WS_LIMITS, **settings}, model), daemon=True
    )
    server.start()
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    payload = json.dumps({**_big_drawing(), "ticket": "__TICKET__", "target": "__TARGET__"})
    done = ctx.Event()
    switches = {kind: ctx.Event() for kind in FLOODS}
    readies = {kind: ctx.Event() for kind in FLOODS}
    outs = {kind: ctx.Queue() for kind in FLOODS}
    flooders = {
        kind: ctx.Process(
            target=_flooder,
            args=(url, ws_url, payload, deal, background, (switches[kind], done, readies[kind]), outs[kind]),
            daemon=True,
        )
        for kind, background in FLOODS.items()
    }
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        for kind, flooder in flooders.items():
            flooder.start()
            assert readies[kind].wait(60), f"the {kind} flooder did not connect"
        assert server.pid is not None
        pids = [f.pid for f in flooders.values() if f.pid is not None]
        policies = {
            os.sched_getscheduler(int(t)) for t in os.listdir(f"/proc/{flooders['flood-bg'].pid}/task")
        }
        assert policies == {os.SCHED_IDLE}, "the background flooder runs at SCHED_IDLE, every thread of it"
        probe_body = payload.replace('"__TICKET__"', '""').replace('"__TARGET__"', "1")
        with connect(ws_url) as ws, httpx.Client(base_url=url, timeout=30) as probe:
            player = Player(ws, _game_cadence_s(), probe, probe_body)
            blocks, flood_cpu = _blocks(player, switches, server.pid, pids)
        done.set()
        posts: list[Post] = [post for out in outs.values() for post in out.get(timeout=60)]
        stored = sum(len(p.read_bytes().splitlines()) for p in shard_paths(folder))
        used_mb = sum(p.stat().st_size for p in shard_paths(folder)) / (1 << 20)
    finally:
        done.set()
        for proc in (*flooders.values(), server):
            if proc.pid is not None:
                proc.terminate()
                proc.join(10)
    codes = {
        kind: dict(sorted(Counter(code for k, code, _, _ in posts if k == kind).items()))
        for kind in ("ticket", "no ticket")
    }
    refused = [s for _, code, s, _ in posts if code == 429]
    quota = settings.get("rounds_per_client_per_day", 200)
    included = "deals, guesses and probes" if deal else "guesses and probes"
    flood_blocks = sum(kind in FLOODS for kind in SCHEDULE)
    print(
        f"\n[{name}] {_load()}\n"
        f"[{name}] {FLOOD_S:.0f} s of flood in {flood_blocks} blocks, {CONNECTIONS} connections, one client, "
        f"{len(payload) / 1024:.0f} kB a round: {len(posts)} posts, by status {codes}\n"
        f"[{name}] stored {stored} rounds (daily quota {quota}), "
        f"{used_mb:.2f} MB on disk (budget {BUDGET_MB:g} MB{', EXCEEDED' if used_mb > BUDGET_MB else ''})\n"
        f"[{name}] 429 answer as the flooders saw it: p50 {_percentile(refused, 0.5):.2f} ms, "
        f"p99 {_percentile(refused, 0.99):.2f} ms\n"
        f"[{name}] server CPU per post: {flood_cpu / max(len(posts), 1) * 1e3:.2f} ms ({included} included)\n"
        f"[{name}] live guess every {_game_cadence_s() * 1e3:.0f} ms, per block "
        "(the flood's posts/s | the player's guesses | its probes answered 429, in ms | "
        "CPU in cores: server / flooders / player / the rest of the host):"
    )
    for i, b in enumerate(blocks):
        rate = sum(b.start <= when < b.end for *_, when in posts) / (b.end - b.start)
        print(
            f"[{name}]   {i + 1} {b.kind:8} {rate:5.0f} posts/s | {len(b.samples):3d} guesses "
            f"p50 {b.p50:6.2f} p99 {_percentile(b.samples, 0.99):6.2f} | {len(b.refusals):3d} probes' 429 "
            f"p50 {_percentile(b.refusals, 0.5):5.2f} p99 {_percentile(b.refusals, 0.99):5.2f} | CPU "
            + " / ".join(f"{c:.2f}" for c in b.cores)
        )
    ratios = {kind: _ratios(blocks, kind) for kind in FLOODS}
    for kind, values in ratios.items():
        probes = [r for b in blocks if b.kind == kind for r in b.refusals]
        print(
            f"[{name}] {kind}: guess p50 / mean of the idle blocks either side: {_spread(values)}; "
            f"probes' 429 p50 {_percentile(probes, 0.5):.2f} ms, p99 {_percentile(probes, 0.99):.2f} ms"
        )
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
    quota = {
        "player_disk_budget_mb": BUDGET_MB,
        "round_rate_per_s": 1e6,
        "round_burst": 1e6,
        "rounds_per_client_per_day": QUOTA,
    }
    # Refusals alone (no deals): what one refused post costs the server process, against what the app
    # itself spends on it; the rest is the HTTP server and the kernel.
    refusals = {"round_rate_per_s": 1e6, "round_burst": 1e6, "rounds_per_client_per_day": 0}
    phases = [
        _phase("rate", {"player_disk_budget_mb": BUDGET_MB}, tmp_path),
        _phase("quota", quota, tmp_path),
        _phase("refusals", refusals, tmp_path, deal=False),
    ]
    print(f"[refusals] the app's own CPU per refused post: {_app_refusal_us(tmp_path, 80_000):.0f} us")
    for kind in FLOODS:
        every = [r for ratios in phases for r in ratios[kind]]
        print(f"[all] guess p50 under the flood / idle, every {kind} block: {_spread(every)}")
    print(f"[end] {_load()}")
