"""DVC stage `player`: the players' shared rounds (data/player/rounds.jsonl) as labelled digits.

Each round the game appended (with the player's consent) is drawn through the shared preprocessing
(`guessme_core.strokes_to_image`, the very function that serves the model) and labelled with its
`target`, the digit the player was asked to draw. DVC caches the output, so each set of players'
drawings is a data version (its md5) that `dvc push` stores and a later training can take in
(params.yaml `data.include_player`).

Bad rows are skipped and counted, never fatal: the file is written by a live app. A missing or empty
file is an empty set. A last line without its newline is still being appended and is left for the
next run, as the game's own counters do.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guessme_core import NUM_CLASSES, PreprocessingError, strokes_to_image
from guessme_train.datasets import IMAGE_SHAPE, Digits, save_digits

DEFAULT_ROUNDS = Path("data/player/rounds.jsonl")


@dataclass
class PlayerReport:
    rows: int = 0  # complete, non-blank lines read
    used: int = 0
    duplicates: int = 0  # a round id seen before (a resent round counts once)
    incomplete: int = 0  # a last line still being written
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> rows

    def as_dict(self, digits: Digits) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "used": self.used,
            "duplicates": self.duplicates,
            "incomplete": self.incomplete,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
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


def complete_lines(data: bytes) -> tuple[list[bytes], bool]:
    """The newline-terminated lines of `data`, and whether a trailing partial line was left out."""
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), end < len(data)


def rounds_to_digits(lines: Iterable[bytes], report: PlayerReport) -> Digits:
    """JSON lines -> labelled digits, in file order; `report` gets the counts."""
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
        except MalformedRound as bad:
            report.skipped[bad.reason] += 1
            continue
        except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            report.skipped["not_json"] += 1
            continue
        if isinstance(round_id, str):
            seen.add(round_id)
        images.append(image)
        labels.append(label)
    report.used = len(labels)
    x = np.stack(images) if images else np.zeros((0, *IMAGE_SHAPE), np.uint8)
    return Digits(x=x, y=np.asarray(labels, dtype=np.int64))


def load_player_digits(path: Path) -> tuple[Digits, PlayerReport]:
    report = PlayerReport()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    lines, partial = complete_lines(data)
    report.incomplete = int(partial)
    return rounds_to_digits(lines, report), report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=Path, default=DEFAULT_ROUNDS)
    ap.add_argument("--out", type=Path, default=Path("data/prepared/player.npz"))
    ap.add_argument("--report", type=Path, default=Path("reports/player.json"))
    args = ap.parse_args(argv)
    digits, report = load_player_digits(args.rounds)
    save_digits(args.out, digits)
    summary = report.as_dict(digits)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("rows", "used", "skipped", "duplicates", "incomplete")}))


if __name__ == "__main__":
    main()
