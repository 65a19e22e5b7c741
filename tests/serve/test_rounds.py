import json
from pathlib import Path

import pytest

from guessme_serve.rounds import RoundStore

pytestmark = pytest.mark.unit


def _round(version: str | None, won: bool) -> dict[str, object]:
    return {"target": 3, "guess": 3 if won else 5, "model_version": version, "won": won}


def test_append_only_lines_and_counts_per_version(tmp_path: Path) -> None:
    path = tmp_path / "player" / "rounds.jsonl"
    store = RoundStore(path)
    assert store.stats().total.rounds == 0
    ids = [store.append(_round("1", True))["id"], store.append(_round("1", False))["id"]]
    store.append(_round("2", True))
    store.append(_round(None, False))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [rec["id"] for rec in lines[:2]] == ids
    assert all("created_at" in rec for rec in lines)
    stats = store.stats()
    assert (stats.total.rounds, stats.total.won, stats.total.lost) == (4, 2, 2)
    assert stats.by_model_version["1"].accuracy == 0.5
    assert stats.by_model_version["2"].won == 1
    assert stats.by_model_version["none"].lost == 1
    assert store.live("1").rounds == 2
    assert store.live("7").rounds == 0


def test_replicas_sharing_the_file_agree_and_damaged_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rounds.jsonl"
    a, b = RoundStore(path), RoundStore(path)
    a.append(_round("1", True))
    with open(path, "a") as f:
        f.write("{not json\n")
    b.append(_round("1", False))
    with open(path, "a") as f:
        f.write('{"half": "written')  # no newline yet: waits for the next look
    assert a.stats().total.rounds == 2
    assert b.live("1").rounds == 2
    with open(path, "a") as f:
        f.write('", "won": true, "model_version": "1"}\n')
    assert a.live("1").won == 2
