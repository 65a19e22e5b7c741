"""The round store: shards, one save per ticket, quotas and the disk budget, shared by replicas."""

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from guessme_serve import rounds
from guessme_serve.rounds import (
    CLOSE_AFTER_DAY_S,
    LEGACY_FILE,
    MAX_VERSION_KEYS,
    TOMBSTONES,
    RoundStore,
    SaveLimits,
    SaveRefused,
    shard_paths,
)

pytestmark = pytest.mark.unit

DAY = 1_796_000_000.0  # a fixed UTC time (2026-11-30)
LIMITS = SaveLimits(per_client_per_day=1000, disk_budget_bytes=1 << 30, ticket_ttl_s=300)


class Clock:
    def __init__(self, now: float = DAY) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _round(version: str | None, won: bool, pad: int = 0) -> dict[str, Any]:
    return {"target": 3, "guess": 3 if won else 5, "model_version": version, "won": won, "pad": "x" * pad}


_n = iter(range(10**9))


def save(
    store: RoundStore, fields: dict[str, Any], client: str = "c1", limits: SaveLimits = LIMITS, **kw: Any
):
    nonce = kw.pop("nonce", f"n{next(_n)}")
    return store.save(fields, ticket_nonce=nonce, ticket_issued_ms=int(store._clock() * 1000), client=client,
                      limits=limits)  # fmt: skip


def lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in shard_paths(folder) for line in p.read_text().splitlines()]


def test_shards_rotate_by_size_and_day_and_closed_shards_never_change(tmp_path: Path) -> None:
    clock = Clock()
    store = RoundStore(tmp_path, shard_max_bytes=2000, clock=clock)
    for _ in range(5):
        save(store, _round("1", True, pad=600))
    names = [p.name for p in shard_paths(tmp_path)]
    assert names[0].startswith("rounds-20261130-0001")
    assert len(names) >= 2
    first = (tmp_path / names[0]).read_bytes()
    assert all(p.stat().st_size <= 2000 for p in shard_paths(tmp_path))
    clock.now += 86_400  # the next day opens a new shard
    save(store, _round("1", True))
    assert shard_paths(tmp_path)[-1].name == "rounds-20261201-0001.jsonl"
    assert (tmp_path / names[0]).read_bytes() == first
    assert store.stats().total.rounds == 6


def test_closed_shards_are_read_once_and_late_or_removed_ones_still_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On the cluster's network volume each open is a round trip: a shard no one appends to any more is
    # not reopened on every look, but a late line from a replica whose clock is behind is still seen.
    clock = Clock()
    a, b = (RoundStore(tmp_path, shard_max_bytes=2000, clock=clock) for _ in range(2))
    for _ in range(5):
        save(a, _round("1", True, pad=600))
    day1 = [p.name for p in shard_paths(tmp_path)]
    assert len(day1) >= 2
    clock.now += 86_400 + 60  # the next day, 60 s in: yesterday's last shard may still take a line
    with open(tmp_path / day1[-1], "a") as f:
        f.write(json.dumps({"won": False, "model_version": "1"}) + "\n")
    save(b, _round("1", True))
    assert a.stats().total.rounds == 7
    clock.now += CLOSE_AFTER_DAY_S
    assert a.stats().total.rounds == 7  # yesterday's last shard, read to its end, is closed now
    opened: list[str] = []

    def counting_open(path: Any, *args: Any, **kw: Any) -> Any:
        opened.append(Path(path).name)
        return open(path, *args, **kw)

    save(b, _round("1", False))
    monkeypatch.setattr(rounds, "open", counting_open, raising=False)
    assert a.stats().total.rounds == 8
    assert opened == ["rounds-20261201-0001.jsonl"]  # today's shard only
    size = (tmp_path / day1[0]).stat().st_size
    before = a.used_bytes()
    (tmp_path / day1[0]).unlink()  # an operator frees space after pushing it to the DVC remote
    assert a.used_bytes() == before - size


def test_replicas_sharing_the_folder_agree_and_damaged_lines_are_skipped(tmp_path: Path) -> None:
    a, b = RoundStore(tmp_path), RoundStore(tmp_path)
    save(a, _round("1", True))
    (tmp_path / LEGACY_FILE).write_text(
        '{"won": false, "model_version": "1"}\n{not json\n'
    )  # older single file
    save(b, _round("1", False))
    shard = shard_paths(tmp_path)[-1]
    with open(shard, "a") as f:
        f.write('{"half": "written')  # no newline yet: waits for the next look
    assert a.stats().total.rounds == 3
    assert b.live("1").rounds == 3
    with open(shard, "a") as f:
        f.write('", "won": true, "model_version": "1"}\n')
    assert a.live("1").won == 2


def test_a_ticket_saves_once_even_across_replicas_and_restarts(tmp_path: Path) -> None:
    a, b = RoundStore(tmp_path), RoundStore(tmp_path)
    save(a, _round("1", True), nonce="same")
    for store in (b, a, RoundStore(tmp_path)):  # another replica, the same one, a restarted one
        with pytest.raises(SaveRefused) as refused:
            save(store, _round("1", True), nonce="same")
        assert refused.value.status == 409
    assert len(lines(tmp_path)) == 1


def test_daily_quota_counts_every_replica_and_resets_the_next_day(tmp_path: Path) -> None:
    clock = Clock()
    limits = SaveLimits(per_client_per_day=3)
    a, b = RoundStore(tmp_path, clock=clock), RoundStore(tmp_path, clock=clock)
    save(a, _round("1", True), limits=limits)
    save(b, _round("1", True), limits=limits)
    save(a, _round("1", True), limits=limits)
    with pytest.raises(SaveRefused) as refused:
        save(b, _round("1", True), limits=limits)
    assert (refused.value.status, refused.value.code) == (429, "daily_quota")
    assert "the game goes on" in str(refused.value)
    save(b, _round("1", True), client="c2", limits=limits)  # another client is not affected
    clock.now += 86_400
    save(b, _round("1", True), limits=limits)
    assert len(lines(tmp_path)) == 5


def test_disk_budget_is_never_exceeded(tmp_path: Path) -> None:
    limits = SaveLimits(disk_budget_bytes=3000)
    store = RoundStore(tmp_path)
    saved = 0
    while store.used_bytes() + 600 <= 3000:
        save(store, _round("1", True, pad=500), limits=limits)
        saved += 1
    with pytest.raises(SaveRefused) as refused:
        save(store, _round("1", True, pad=500), limits=limits)
    assert (refused.value.status, refused.value.code) == (507, "disk_budget")
    assert saved >= 3
    assert sum(p.stat().st_size for p in shard_paths(tmp_path)) <= 3000
    assert store.used_bytes() <= 3000


def test_a_failed_write_leaves_no_partial_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RoundStore(tmp_path)
    save(store, _round("1", True))
    before = shard_paths(tmp_path)[0].read_bytes()
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        real_write(fd, data[: len(data) // 2])  # half the line reaches the disk, then ENOSPC
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(SaveRefused) as refused:
        save(store, _round("1", True))
    monkeypatch.undo()
    assert refused.value.status == 507
    assert "No space left" in str(refused.value)
    assert shard_paths(tmp_path)[0].read_bytes() == before
    assert store.stats().total.rounds == 1


def test_stats_stay_small_whatever_versions_were_written(tmp_path: Path) -> None:
    store = RoundStore(tmp_path)
    with open(tmp_path / LEGACY_FILE, "w") as f:  # a hostile writer's lines, straight into the folder
        for i in range(5000):
            f.write(
                json.dumps({"won": i % 2 == 0, "model_version": f"../../etc/passwd{i}" + "x" * 40}) + "\n"
            )
    stats = store.stats()
    assert len(stats.by_model_version) <= MAX_VERSION_KEYS + 1
    assert stats.by_model_version["other"].rounds > 4000
    assert len(stats.model_dump_json()) < 10_000


def test_withdrawals_append_tombstones(tmp_path: Path) -> None:
    store = RoundStore(tmp_path)
    store.withdraw("a" * 32)
    store.withdraw("b" * 32)
    assert [json.loads(line)["player"] for line in (tmp_path / TOMBSTONES).read_text().splitlines()] == [
        "a" * 32,
        "b" * 32,
    ]


@pytest.mark.parametrize("offset", [-1e-3, 0.0, 1e-3, 43_200.5, 86_399.999])
def test_the_quota_day_is_the_utc_date_around_each_midnight(offset: float) -> None:
    # The day's name is cached by day number (rounds._today): it must still be the UTC calendar date.
    midnight = DAY - DAY % 86_400
    for day in range(-1, 3):
        now = midnight + day * 86_400 + offset
        assert rounds._today(now) == datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
