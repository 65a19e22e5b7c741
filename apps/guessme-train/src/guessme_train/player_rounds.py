"""The players' shared rounds (every shard of their folder) as labelled digits (the `player` stage's library).

Each round the game saved (with the player's consent) is drawn through the shared preprocessing
(`guessme_core.strokes_to_image`, the very function that serves the model) and labelled with its
`target`, the digit the server dealt for it. DVC caches the output, so each set of players' drawings
is a data version (its md5) that `dvc push` stores and a later training can take in (params.yaml
`data.include_player`).

Rules decide which rounds are trusted as labels (params.yaml `player:`), and the report counts what
each one dropped:
- `withdrawn`: the player asked to delete their drawings (tombstones.jsonl). Data versions made
  before the withdrawal still hold them: DVC keeps every version it has stored.
- `no_ticket`: saved before the server dealt rounds, so its label was the client's word.
- `not_in_top_k`: the model that served the round (its probabilities are stored with the round,
  computed by the server) did not rank the target in its top `top_k`. A player who draws a 3 for
  "7" is wrong, or poisoning the data; a real 7 that the model misread is mostly still ranked second.
- `unlikely`: ranked high enough, but below `min_probability`. A confident model's runner-up often
  has a probability near zero: with top_k 2 alone, a random wrong label that happens to be the
  runner-up gets through (measured: 3.8% wrong labels left of a 30% poisoned set; 0% with this rule,
  every honest drawing kept; tests/train/test_label_quality.py).

Bad rows are skipped and counted, never fatal: the files are written by a live app. A missing folder
is an empty set. A last line without its newline is still being appended and is left for the next
run, as the game's own counters do.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from guessme_core import NUM_CLASSES, PreprocessingError, strokes_to_image
from guessme_core.player_files import TOMBSTONES, shard_paths
from guessme_train.datasets import IMAGE_SHAPE, Digits
from guessme_train.params import check_keys

RULES = ("withdrawn", "no_ticket", "not_in_top_k", "unlikely")


@dataclass(frozen=True)
class LabelRules:
    """`player:` in params.yaml (this module owns and validates that section; no defaults here)."""

    top_k: int  # keep a round only if the serving model ranked its target this high (0: no rank rule)
    min_probability: float  # ... and gave the target at least this probability
    require_ticket: bool  # drop rounds saved without a server-dealt ticket

    def __post_init__(self) -> None:
        top_k = self.top_k
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 0 <= top_k <= NUM_CLASSES:
            raise ValueError(f"player.top_k must be an integer from 0 to {NUM_CLASSES}, got {self.top_k!r}")

    @classmethod
    def from_params_file(cls, path: Path) -> LabelRules:
        raw: Any = yaml.safe_load(path.read_text()) or {}
        section = raw.get("player") if isinstance(raw, dict) else None
        section = check_keys(section, cls.__dataclass_fields__, f"{path}: player")
        try:
            return cls(**section)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


@dataclass
class PlayerReport:
    rows: int = 0  # complete, non-blank lines read
    used: int = 0
    duplicates: int = 0  # a round id seen before (a resent round counts once)
    incomplete: int = 0  # last lines still being written (one per shard at most)
    skipped: Counter[str] = field(default_factory=Counter)  # malformed rows, by reason
    dropped: Counter[str] = field(default_factory=Counter)  # well-formed rows a label rule left out

    def as_dict(self, digits: Digits) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "used": self.used,
            "duplicates": self.duplicates,
            "incomplete": self.incomplete,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "dropped": sum(self.dropped.values()),
            "dropped_by_rule": {rule: self.dropped[rule] for rule in RULES},
            "class_counts": digits.class_counts(),
        }


class MalformedRound(ValueError):
    """A row that is not a usable labelled drawing; `reason` is the report's key for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def round_to_digit(row: Any) -> tuple[np.ndarray, int]:
    """One stored round -> (uint8 28x28 image, label); MalformedRound says why a row is unusable."""
    if not isinstance(row, dict):
        raise MalformedRound("not_an_object")
    target = row.get("target")
    # bool is an int to Python, never a digit.
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < NUM_CLASSES:
        raise MalformedRound("bad_target")
    if not all(key in row for key in ("strokes", "width", "height")):
        raise MalformedRound("no_drawing")
    try:
        image = strokes_to_image(row["strokes"], row["width"], row["height"])
    except PreprocessingError:
        raise MalformedRound("bad_drawing") from None
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8), target


def target_rank(row: dict[str, Any], target: int) -> int:
    """How many other classes the serving model found at least as likely as the target (0: its clear
    top guess); a tie counts against the target, so a flat answer ranks nothing high."""
    probs = row.get("probabilities")
    if not isinstance(probs, list) or len(probs) != NUM_CLASSES:
        raise MalformedRound("bad_probabilities")
    if not all(isinstance(p, int | float) and not isinstance(p, bool) for p in probs):
        raise MalformedRound("bad_probabilities")
    return sum(1 for d, p in enumerate(probs) if d != target and p >= probs[target])


def dropped_by(row: dict[str, Any], target: int, rules: LabelRules, withdrawn: set[str]) -> str | None:
    """The first label rule that leaves this well-formed round out, or None to keep it."""
    if row.get("player") in withdrawn:
        return "withdrawn"
    if rules.require_ticket and not isinstance(row.get("ticket"), str):
        return "no_ticket"
    if rules.top_k and target_rank(row, target) >= rules.top_k:
        return "not_in_top_k"
    if rules.top_k and row["probabilities"][target] < rules.min_probability:
        return "unlikely"
    return None


def load_tombstones(folder: Path) -> set[str]:
    """The player hashes whose rounds are withdrawn (a damaged line is ignored)."""
    try:
        data = (folder / TOMBSTONES).read_bytes()
    except FileNotFoundError:
        return set()
    players = set()
    for raw in complete_lines(data)[0]:
        try:
            player = json.loads(raw).get("player")
        except (ValueError, AttributeError):
            continue
        if isinstance(player, str):
            players.add(player)
    return players


def complete_lines(data: bytes) -> tuple[list[bytes], bool]:
    """The newline-terminated lines of `data`, and whether a trailing partial line was left out."""
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), end < len(data)


def rounds_to_digits(
    lines: Iterable[bytes],
    report: PlayerReport,
    rules: LabelRules,
    withdrawn: set[str] | None = None,
) -> Digits:
    """JSON lines -> labelled digits, in file order; `report` gets the counts."""
    withdrawn = withdrawn or set()
    images: list[np.ndarray] = []
    labels: list[int] = []
    seen: set[str] = set()
    for raw in lines:
        if not raw.strip():
            continue
        report.rows += 1
        try:
            row = json.loads(raw)
            round_id = row.get("id") if isinstance(row, dict) else None
            if isinstance(round_id, str) and round_id in seen:
                report.duplicates += 1
                continue
            image, label = round_to_digit(row)
            rule = dropped_by(row, label, rules, withdrawn)
        except MalformedRound as bad:
            report.skipped[bad.reason] += 1
            continue
        except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            report.skipped["not_json"] += 1
            continue
        if isinstance(round_id, str):
            seen.add(round_id)
        if rule is not None:
            report.dropped[rule] += 1
            continue
        images.append(image)
        labels.append(label)
    report.used = len(labels)
    x = np.stack(images) if images else np.zeros((0, *IMAGE_SHAPE), np.uint8)
    return Digits(x=x, y=np.asarray(labels, dtype=np.int64))


def load_player_digits(folder: Path, rules: LabelRules) -> tuple[Digits, PlayerReport]:
    """Every shard of the folder, oldest first, less the withdrawn players' rounds and the rounds the
    label rules do not trust."""
    report = PlayerReport()
    lines: list[bytes] = []
    for path in shard_paths(folder) if folder.is_dir() else []:
        shard_lines, partial = complete_lines(path.read_bytes())
        lines += shard_lines
        report.incomplete += int(partial)
    return rounds_to_digits(lines, report, rules, load_tombstones(folder)), report
