"""Player rounds (shared with consent): an append-only JSON-lines file and its win/loss counts.

The file is the source of truth. Counts are rebuilt by reading only what was appended since
the last look, so every replica on the same disk agrees and a restart loses nothing.
"""

import fcntl
import json
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guessme_serve.paths import configured_path
from guessme_serve.schemas import LiveStats, RoundStats

NO_VERSION = "none"


def default_rounds_path() -> Path:
    return configured_path("GUESSME_PLAYER_DATA", "data", "player", "rounds.jsonl")


class RoundStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._offset = 0
        self._won: dict[str, int] = defaultdict(int)
        self._lost: dict[str, int] = defaultdict(int)

    def append(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Write one round (id and time added) as one line; returns the stored record."""
        record = {"id": uuid.uuid4().hex, "created_at": datetime.now(UTC).isoformat(), **fields}
        line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # other replicas append to the same file
            try:
                f.write(line)
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return record

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

    def _catch_up(self) -> None:
        """Count the complete lines appended since the last call."""
        with self._lock:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self._offset)
                    chunk = f.read()
            except FileNotFoundError:
                return
            end = chunk.rfind(b"\n") + 1  # a half-written last line waits for the next call
            for raw in chunk[:end].splitlines():
                try:
                    rec = json.loads(raw)
                    version = str(rec.get("model_version") or NO_VERSION)
                    (self._won if rec["won"] else self._lost)[version] += 1
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # a damaged line is skipped, never fatal
            self._offset += end


def _live(won: int, lost: int) -> LiveStats:
    rounds = won + lost
    return LiveStats(rounds=rounds, won=won, lost=lost, accuracy=(won / rounds) if rounds else None)
