"""Each data expectation catches a broken copy of good data (so the data tier can fail)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.digit_strokes import draw, variations

from guessme_core import strokes_to_image

from . import checks

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def good() -> tuple[np.ndarray, np.ndarray]:
    """Player-like drawings of every digit through the shared preprocessing: balanced, inked, centred."""
    pairs = [(d, strokes_to_image(draw(d, **v), 280, 280)) for d in range(10) for v in variations()]  # type: ignore[arg-type]
    x = np.stack([np.rint(img * 255).astype(np.uint8) for _, img in pairs])
    return x, np.asarray([d for d, _ in pairs], dtype=np.int64)


def test_good_data_passes_every_check(good: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = good
    assert checks.shape_problems("good", x, y) == []
    assert checks.class_balance_problems({"train": y, "test": y}) == []
    assert checks.pixel_problems("good", x) == []
    assert checks.centring_problems("good", x) == []
    assert checks.duplicate_problems({"train": x[::2], "test": x[1::2]}) == []


def test_shapes_and_labels(good: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = good
    assert checks.shape_problems("f", x.astype(np.float32), y)
    assert checks.shape_problems("l", x, np.where(y == 3, 10, y))


def test_class_balance_catches_a_missing_class_and_a_skewed_split(
    good: tuple[np.ndarray, np.ndarray],
) -> None:
    _, y = good
    assert checks.class_balance_problems({"train": y[y != 3]})
    skewed = np.concatenate([y, np.full(12, 4)])  # 4s over-represented in one split
    assert checks.class_balance_problems({"train": y, "val": skewed})


def test_pixels_catch_blank_filled_and_inverted_digits(good: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = good
    blank = x.copy()
    blank[0] = 0
    filled = x.copy()
    filled[1] = 255
    assert checks.pixel_problems("blank", blank)
    assert checks.pixel_problems("filled", filled)
    assert checks.pixel_problems("inverted", 255 - x)  # white digits on black, read the wrong way round


def test_centring_catches_shifted_digits(good: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = good
    assert checks.centring_problems("shifted", np.roll(x[:5], 6, axis=2))


def test_duplicates_catch_a_test_digit_in_train(good: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = good
    train, test = x[::2], x[1::2]
    problems = checks.duplicate_problems({"train": np.concatenate([train, test[:3]]), "test": test})
    assert problems == ["train and test share 3 identical digits"]


def test_the_serve_apps_stored_round_passes_the_schema_and_broken_ones_fail(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from serve.conftest import tiny_model

    from guessme_core.player_files import shard_paths
    from guessme_serve.api import bind_service, create_api
    from guessme_serve.model_holder import ModelHolder
    from guessme_serve.rounds import RoundStore
    from guessme_serve.service import GuessmeService
    from guessme_serve.tickets import TicketSigner

    service = GuessmeService(ModelHolder(), RoundStore(tmp_path), TicketSigner(b"k" * 32))
    service.holder.current = tiny_model("3")
    dealt = service.deal("s")
    bind_service(service)
    body = {"strokes": draw(4), "width": 280, "height": 280, "target": dealt.target, "ticket": dealt.ticket}
    body |= {"guess": 4, "probabilities": [0.1] * 10, "player_id": "player-0001"}
    with TestClient(create_api()) as client:
        assert client.post("/rounds", json=body).status_code == 201
    (line,) = shard_paths(tmp_path)[0].read_bytes().splitlines()
    row = json.loads(line)
    assert checks.round_problems(row) == []  # the writer and the data tier agree
    broken = {
        "ticket": None,
        "target": "7",
        "probabilities": [0.5] * 10,
        "player": "../../etc/passwd",
        "strokes": [[[1, "x"], [2, 3]]],
        "model_version": 3,
    }
    for key, value in broken.items():
        assert checks.round_problems({**row, key: value}) == [f"bad or missing {key}"], key
    assert checks.rounds_file_problems("shard", [b"{not json"]) == ["shard:1: not JSON"]
    assert checks.round_problems({**row, "ticket": None}, dealt=False) == []  # a legacy round
    assert checks.tombstone_ok(json.dumps({"player": "a" * 32}))
    assert not checks.tombstone_ok(json.dumps({"player": "bob"}))
