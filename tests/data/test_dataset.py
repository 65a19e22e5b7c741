"""The data tier: expectations on the prepared MNIST splits and on the player data version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from guessme_core.player_files import LEGACY_FILE, TOMBSTONES, shard_paths

from . import checks

pytestmark = pytest.mark.data

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


def test_splits_have_the_expected_shapes_and_labels(splits: Splits) -> None:
    assert [p for name, (x, y) in splits.items() for p in checks.shape_problems(name, x, y)] == []
    assert all(len(y) for _, y in splits.values())


def test_class_balance(splits: Splits) -> None:
    assert checks.class_balance_problems({name: y for name, (_, y) in splits.items()}) == []


def test_pixel_range_and_ink_fraction(splits: Splits) -> None:
    assert [p for name, (x, _) in splits.items() for p in checks.pixel_problems(name, x)] == []


def test_digits_are_centred(splits: Splits) -> None:
    assert [p for name, (x, _) in splits.items() for p in checks.centring_problems(name, x)] == []


def test_no_digit_is_in_two_splits(splits: Splits) -> None:
    assert checks.duplicate_problems({name: x for name, (x, _) in splits.items()}) == []


def test_player_digits_look_like_mnist(prepared_dir: Path) -> None:
    """The `player` stage's output (when it ran): the same shapes, ink and centring as MNIST."""
    path = prepared_dir / "player.npz"
    if not path.is_file():
        pytest.skip("no player.npz here (the `player` stage has not run in this data version)")
    with np.load(path, allow_pickle=False) as data:
        x, y = data["x"], data["y"]
    problems = checks.shape_problems("player", x, y)
    if len(x):
        problems += checks.centring_problems("player", x) + checks.pixel_problems("player", x)
    assert problems == []


def test_player_rounds_follow_the_schema(player_dir: Path) -> None:
    """Every complete line of every shard is a dealt round; the legacy file is checked as what it was."""
    problems: list[str] = []
    for path in shard_paths(player_dir):
        data = path.read_bytes()
        lines = [line for line in data[: data.rfind(b"\n") + 1].splitlines() if line.strip()]
        problems += checks.rounds_file_problems(path.name, lines, dealt=path.name != LEGACY_FILE)
    tombstones = player_dir / TOMBSTONES
    if tombstones.is_file():
        for number, line in enumerate(tombstones.read_text().splitlines(), 1):
            if not checks.tombstone_ok(line):
                problems.append(f"{TOMBSTONES}:{number}: not a player hash")
    assert problems == []
