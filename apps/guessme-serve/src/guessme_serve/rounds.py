"""Player rounds (shared with consent): append-only JSON-lines shards, tombstones, and their counts.

The folder (GUESSME_PLAYER_DATA, default data/player) holds `rounds-<YYYYMMDD>-<NNNN>.jsonl` shards:
a shard takes the day's rounds until it would pass `SHARD_MAX_BYTES`, then the next one opens; a
shard of a past day or a full one is closed and never written again, so `dvc add`/`push` moves only
new shards. `tombstones.jsonl` lists the players who withdrew consent (the `player` stage drops
their rounds). The shards are the source of truth, shared by every replica on the same volume: the
counts, the used tickets and each client's rounds of the day are rebuilt by reading only what was
appended since the last look, so they agree across replicas and survive a restart. A closed shard,
once read to its end, is not opened again: on a network volume (the cluster's shared claim) each
open is a round trip, and a year of shards would otherwise be reopened on every save and every look.

A write happens under an exclusive lock of the folder (`.rounds.lock`), after the checks that need
the shared state (ticket unused, client under its daily quota, total under the disk budget), as one
`write()` of one whole line; a short or failed write is cut back off, so no partial line remains.
"""

import fcntl
import functools
import json
import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guessme_contracts.layout import Layout
from guessme_core.player_files import LEGACY_FILE, SHARD_NAME, TOMBSTONES, shard_name, shard_paths
from guessme_serve.schemas import LiveStats, RoundStats

NO_VERSION = "none"
OTHER_VERSIONS = "other"
MAX_VERSION_KEYS = 32  # /rounds/stats stays small whatever was written to the shards
SHARD_MAX_BYTES = 16 << 20
LOCK_FILE = ".rounds.lock"
SECONDS_PER_DAY = 86_400
# A past day's last shard counts as closed only this long after its day ended (UTC): replicas on other
# nodes choose the day by their own clocks, and one running a little behind may still append to it.
CLOSE_AFTER_DAY_S = 600.0
__all__ = ["LEGACY_FILE", "TOMBSTONES", "shard_paths"]  # the folder's layout, for callers of this module


class SaveRefused(Exception):
    """A round that is not stored; `status` is the HTTP status, `code` the machine-readable reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class SaveLimits:
    per_client_per_day: int = 200
    disk_budget_bytes: int = 1 << 30
    ticket_ttl_s: float = 300.0


def default_player_dir() -> Path:
    """The clone's players' rounds folder (guessme_contracts.layout: GUESSME_PLAYER_DATA, else data/player;
    a path to a `.jsonl` file, as older configs gave, means its folder)."""
    return Layout.from_env().player_data


class RoundStore:
    def __init__(
        self, folder: Path, shard_max_bytes: int = SHARD_MAX_BYTES, clock: Callable[[], float] = time.time
    ) -> None:
        self.folder = folder
        self.shard_max_bytes = shard_max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._offsets: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self._closed: set[str] = set()  # shards read to their end that no one appends to any more
        self._won: dict[str, int] = defaultdict(int)
        self._lost: dict[str, int] = defaultdict(int)
        self._used_tickets: dict[str, int] = {}  # nonce -> issued (ms), pruned after the ticket TTL
        self._day = ""
        self._client_today: Counter[str] = Counter()
        self._bytes = 0

    # -- writing -------------------------------------------------------------------------------
    def save(
        self,
        fields: dict[str, Any],
        *,
        ticket_nonce: str,
        ticket_issued_ms: int,
        client: str,
        limits: SaveLimits,
    ) -> dict[str, Any]:
        """Store one round (id, time, ticket and client added) or raise SaveRefused; never half a line."""
        now = self._clock()
        record = {
            "id": uuid.uuid4().hex,
            "created_at": datetime.fromtimestamp(now, UTC).isoformat(),
            **fields,
            "ticket": ticket_nonce,
            "ticket_issued_ms": ticket_issued_ms,
            "client": client,
        }
        line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()
        with self._folder_lock():
            self._catch_up(limits.ticket_ttl_s)
            with self._lock:
                if ticket_nonce in self._used_tickets:
                    raise SaveRefused(
                        409, "used_ticket", "this round ticket was already used: one round, one save"
                    )
                if self._client_today[client] >= limits.per_client_per_day:
                    raise SaveRefused(429, "daily_quota", quota_message(limits.per_client_per_day))
                if self._bytes + len(line) > limits.disk_budget_bytes:
                    raise SaveRefused(
                        507, "disk_budget", "the player data store is full: drawings are not saved for now"
                    )
            self._write_line(self._open_shard(now, len(line)), line)
            self._catch_up(limits.ticket_ttl_s)  # count it now: the next check must see it
        return record

    def withdraw(self, player: str) -> None:
        """Append a tombstone: the `player` stage leaves this player's rounds out of every new version."""
        record = {"player": player, "at": datetime.fromtimestamp(self._clock(), UTC).isoformat()}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._folder_lock():
            self._write_line(self.folder / TOMBSTONES, line)

    def _open_shard(self, now: float, size: int) -> Path:
        day = _today(now)
        todays = [(p, m) for p in shard_paths(self.folder) if (m := SHARD_NAME.match(p.name)) and m[1] == day]
        if not todays:
            return self.folder / shard_name(day, 1)
        last, match = todays[-1]  # sorted: the highest sequence number
        if last.stat().st_size + size <= self.shard_max_bytes:
            return last
        return self.folder / shard_name(day, int(match[2]) + 1)

    @staticmethod
    def _write_line(path: Path, line: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            before = os.fstat(fd).st_size
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write ({written} of {len(line)} bytes)")
            except OSError as exc:
                os.ftruncate(fd, before)  # no partial line: the shard is as it was
                raise SaveRefused(507, "disk_full", f"the server could not store the drawing: {exc}") from exc
        finally:
            os.close(fd)

    @contextmanager
    def _folder_lock(self) -> Iterator[None]:
        """Exclusive across processes and replicas sharing the folder (and threads of this one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / LOCK_FILE, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- reading -------------------------------------------------------------------------------
    def stats(self) -> RoundStats:
        self._catch_up()
        with self._lock:
            versions = sorted(set(self._won) | set(self._lost))
            by_version = {v: _live(self._won[v], self._lost[v]) for v in versions}
            total = _live(sum(self._won.values()), sum(self._lost.values()))
        return RoundStats(total=total, by_model_version=by_version)

    def live(self, version: str | None) -> LiveStats:
        self._catch_up()
        key = version or NO_VERSION
        with self._lock:
            return _live(self._won.get(key, 0), self._lost.get(key, 0))

    def client_rounds_today(self, client: str) -> int:
        """What this replica last saw (the definitive check is under the lock in `save`)."""
        with self._lock:
            return self._client_today[client] if self._day == _today(self._clock()) else 0

    def used_bytes(self) -> int:
        self._catch_up()
        return self._bytes

    def _catch_up(self, ticket_ttl_s: float = SaveLimits.ticket_ttl_s) -> None:
        """Count the complete lines appended to any shard since the last call."""
        with self._lock:
            now = self._clock()
            today = _today(now)
            if today != self._day:
                self._day, self._client_today = today, Counter()
            total = 0
            paths = shard_paths(self.folder)
            # Sorted by name, so each day maps to its highest sequence number: the one shard it appends to.
            last_of_day = {m[1]: p.name for p in paths if (m := SHARD_NAME.match(p.name))}
            for path in paths:
                name = path.name
                if name not in self._closed:
                    self._read_new_lines(path)
                    if self._offsets.get(name) == self._sizes.get(name) and _closed(name, last_of_day, now):
                        self._closed.add(name)
                total += self._sizes.get(name, 0)
            self._bytes = total
            horizon = (now - ticket_ttl_s) * 1000
            for nonce in [n for n, issued in self._used_tickets.items() if issued < horizon]:
                del self._used_tickets[nonce]

    def _read_new_lines(self, path: Path) -> None:
        """Count the complete lines appended to `path` since the last read (under self._lock)."""
        start = self._offsets.get(path.name, 0)
        try:
            with open(path, "rb") as f:
                f.seek(start)
                chunk = f.read()
                self._sizes[path.name] = f.tell()
        except FileNotFoundError:  # removed since the listing (an operator freeing space)
            self._sizes.pop(path.name, None)
            return
        end = chunk.rfind(b"\n") + 1  # a half-written last line waits for the next call
        for raw in chunk[:end].splitlines():
            self._count(raw)
        self._offsets[path.name] = start + end

    def _count(self, raw: bytes) -> None:
        try:
            rec = json.loads(raw)
            version = str(rec.get("model_version") or NO_VERSION)
            known = self._won.keys() | self._lost.keys()
            if version not in known and len(known) >= MAX_VERSION_KEYS:
                version = OTHER_VERSIONS
            (self._won if rec["won"] else self._lost)[version] += 1
            if isinstance(rec.get("ticket"), str):
                self._used_tickets[rec["ticket"]] = int(rec.get("ticket_issued_ms") or 0)
            if str(rec.get("created_at", ""))[:10].replace("-", "") == self._day and rec.get("client"):
                self._client_today[str(rec["client"])] += 1
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # a damaged line is skipped, never fatal


def _closed(name: str, last_of_day: dict[str, str], now: float) -> bool:
    """Whether no replica appends to this rounds file any more: the legacy single file, a shard with a
    later one of its day (only a day's last shard takes rounds), or the last shard of a day that ended
    more than CLOSE_AFTER_DAY_S ago."""
    match = SHARD_NAME.match(name)
    if match is None:
        return name == LEGACY_FILE
    if last_of_day.get(match[1]) != name:
        return True
    day_end = datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC).timestamp() + SECONDS_PER_DAY
    return now > day_end + CLOSE_AFTER_DAY_S


def _today(now: float) -> str:
    """The UTC day of `now` as YYYYMMDD. Asked for on every post the daily quota checks, refused ones
    included: strftime each time took ~8% of the server's Python time under a flood of refused posts
    (py-spy), so each day's name is formatted once (POSIX time counts 86,400 s in every UTC day)."""
    return _day_name(int(now // SECONDS_PER_DAY))


@functools.lru_cache(maxsize=4)
def _day_name(day: int) -> str:
    return datetime.fromtimestamp(day * SECONDS_PER_DAY, UTC).strftime("%Y%m%d")


def quota_message(per_day: int) -> str:
    return f"daily limit reached: at most {per_day} drawings are saved per player and day; the game goes on"


def _live(won: int, lost: int) -> LiveStats:
    rounds = won + lost
    return LiveStats(rounds=rounds, won=won, lost=lost, accuracy=(won / rounds) if rounds else None)
