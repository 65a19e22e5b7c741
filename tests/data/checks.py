"""Expectations on the data, as functions that list what is wrong (empty: all good).

The data tier (test_dataset.py) runs them on the prepared MNIST splits and on the player data
version; test_checks.py proves each one catches a broken copy. Thresholds come from the data:
MNIST classes hold 8.6-11.3% each, 13% of a digit's pixels are ink (3-35% per digit), and digits
are centred on their centre of mass at (14, 14) within 1 px.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

NUM_CLASSES = 10
CLASS_SHARE = (0.07, 0.13)  # each class's share of a split
MAX_SHARE_GAP = 0.02  # a class's share in val/test vs. train (the split is stratified)
INK_LEVEL = 128  # a pixel at or above this is ink
INK_FRACTION = (0.01, 0.5)  # per digit: not blank, not a filled square
MEAN_INK_FRACTION = (0.08, 0.22)  # per split
MIN_PEAK = 200  # the darkest pixel of a digit: a faint or empty image has none
CENTRE = 14.0  # in pixel indices (0-27): where MNIST puts the centre of mass
MAX_OFF_CENTRE_PX = 3.0


def shape_problems(name: str, x: np.ndarray, y: np.ndarray) -> list[str]:
    problems = []
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        problems.append(f"{name}: images must be uint8 (N, 28, 28), got {x.dtype} {x.shape}")
    if y.dtype != np.int64 or y.shape != (len(x),):
        problems.append(f"{name}: labels must be int64 (N,), got {y.dtype} {y.shape}")
    elif len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES):
        problems.append(
            f"{name}: labels outside 0-9: {sorted(set(y[(y < 0) | (y >= NUM_CLASSES)].tolist()))[:5]}"
        )
    return problems


def class_balance_problems(splits: Mapping[str, np.ndarray], reference: str = "train") -> list[str]:
    """Every class in every split within CLASS_SHARE, and each split's shares close to the reference's."""
    problems = []
    shares = {name: np.bincount(y, minlength=NUM_CLASSES) / max(len(y), 1) for name, y in splits.items()}
    for name, share in shares.items():
        low, high = CLASS_SHARE
        off = {d: round(float(s), 3) for d, s in enumerate(share) if not low <= s <= high}
        if off:
            problems.append(f"{name}: class shares outside [{low}, {high}]: {off}")
        if name != reference and reference in shares:
            gap = np.abs(share - shares[reference])
            if gap.max() > MAX_SHARE_GAP:
                problems.append(
                    f"{name}: class {int(gap.argmax())} share differs from {reference} by {gap.max():.3f}"
                )
    return problems


def pixel_problems(name: str, x: np.ndarray) -> list[str]:
    """Ink present in every digit, a plausible share of ink per digit and per split."""
    if not len(x):
        return []
    problems = []
    peak = x.reshape(len(x), -1).max(axis=1)
    faint = int((peak < MIN_PEAK).sum())
    if faint:
        problems.append(f"{name}: {faint} digits have no pixel >= {MIN_PEAK} (blank or faint)")
    ink = (x >= INK_LEVEL).mean(axis=(1, 2))
    low, high = INK_FRACTION
    bad = int(((ink < low) | (ink > high)).sum())
    if bad:
        problems.append(f"{name}: {bad} digits have an ink fraction outside [{low}, {high}]")
    mean_low, mean_high = MEAN_INK_FRACTION
    if not mean_low <= ink.mean() <= mean_high:
        problems.append(f"{name}: mean ink fraction {ink.mean():.3f} outside [{mean_low}, {mean_high}]")
    return problems


def centring_problems(name: str, x: np.ndarray, max_off: float = MAX_OFF_CENTRE_PX) -> list[str]:
    """Each digit's centre of mass within `max_off` px of the image centre (MNIST's own convention)."""
    mass = x.astype(np.float64)
    total = mass.sum(axis=(1, 2))
    drawn = total > 0
    if not drawn.any():
        return []
    rows, cols = np.mgrid[0:28, 0:28]
    cy = (mass * rows).sum(axis=(1, 2))[drawn] / total[drawn]
    cx = (mass * cols).sum(axis=(1, 2))[drawn] / total[drawn]
    off = np.hypot(cy - CENTRE, cx - CENTRE)
    bad = int((off > max_off).sum())
    return (
        [f"{name}: {bad} digits are off centre by more than {max_off} px (worst {off.max():.1f})"]
        if bad
        else []
    )


def digest(image: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()


def duplicate_problems(splits: Mapping[str, np.ndarray]) -> list[str]:
    """No digit (pixel for pixel) in two splits: a test digit seen in training inflates the score."""
    seen: dict[bytes, str] = {}
    shared: dict[tuple[str, str], int] = {}
    for name, x in splits.items():
        for key in {digest(img) for img in x}:
            if key in seen and seen[key] != name:
                pair = (seen[key], name)
                shared[pair] = shared.get(pair, 0) + 1
            seen.setdefault(key, name)
    return [f"{a} and {b} share {n} identical digits" for (a, b), n in shared.items()]


_ROUND_ID = re.compile(r"^[0-9a-f]{32}$")
_HASH = re.compile(r"^[0-9a-f]{32}$")
_NUMBER = (int, float)


def _is_number(v: Any) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool)


def _is_digit(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < NUM_CLASSES


def round_problems(row: Any, *, dealt: bool = True) -> list[str]:
    """The schema of a stored round (the serve app's record); `dealt`: saved with a server ticket."""
    if not isinstance(row, dict):
        return ["not a JSON object"]
    checks: dict[str, bool] = {
        "id": isinstance(row.get("id"), str) and bool(_ROUND_ID.match(row["id"])),
        "created_at": isinstance(row.get("created_at"), str) and row["created_at"][:4].isdigit(),
        "strokes": isinstance(row.get("strokes"), list)
        and all(
            isinstance(s, list)
            and len(s) == 2
            and all(isinstance(a, list) and all(map(_is_number, a)) for a in s)
            for s in row["strokes"]
        ),
        "width": _is_number(row.get("width")) and row["width"] > 0,
        "height": _is_number(row.get("height")) and row["height"] > 0,
        "target": _is_digit(row.get("target")),
        "guess": _is_digit(row.get("guess")),
        "probabilities": isinstance(row.get("probabilities"), list)
        and len(row["probabilities"]) == NUM_CLASSES
        and all(_is_number(p) and 0 <= p <= 1 for p in row["probabilities"])
        and abs(sum(row["probabilities"]) - 1) < 0.01,
        "won": isinstance(row.get("won"), bool),
        "model_version": row.get("model_version") is None or isinstance(row["model_version"], str),
    }
    if dealt:
        checks |= {
            "ticket": isinstance(row.get("ticket"), str) and 0 < len(row["ticket"]) <= 64,
            "player": row.get("player") is None
            or (isinstance(row["player"], str) and bool(_HASH.match(row["player"]))),
            "model_version": isinstance(row.get("model_version"), str) and len(row["model_version"]) <= 64,
        }
    return [f"bad or missing {key}" for key, ok in checks.items() if not ok]


def rounds_file_problems(name: str, lines: Iterable[bytes], *, dealt: bool = True) -> list[str]:
    problems = []
    for number, raw in enumerate(lines, 1):
        try:
            row = json.loads(raw)
        except ValueError:
            problems.append(f"{name}:{number}: not JSON")
            continue
        problems += [f"{name}:{number}: {p}" for p in round_problems(row, dealt=dealt)]
    return problems[:20]


def tombstone_ok(line: str) -> bool:
    try:
        row = json.loads(line)
    except ValueError:
        return False
    return isinstance(row, dict) and isinstance(row.get("player"), str) and bool(_HASH.match(row["player"]))
