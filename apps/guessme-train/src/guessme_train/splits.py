"""A seeded, stratified train/val/test split and its class-count report (the `prepare` stage's library).

With `data.include_player`, the players' labelled drawings (stage `player`) join the train split only,
so val and test stay the MNIST digits every model is compared on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from guessme_train.datasets import Digits
from guessme_train.params import DataParams, Params, PrepareParams

SPLITS = ("train", "val", "test")


def stratified_split(digits: Digits, params: PrepareParams) -> dict[str, Digits]:
    """Per class: shuffle with the seed, then cut test and val fractions off; every class keeps its share."""
    if not (0 <= params.val_fraction < 1 and 0 < params.test_fraction < 1):
        raise ValueError("val_fraction must be in [0, 1) and test_fraction in (0, 1)")
    if params.val_fraction + params.test_fraction >= 1:
        raise ValueError("val_fraction + test_fraction must leave digits to train on")
    rng = np.random.default_rng(params.seed)
    keep = np.arange(len(digits))
    if params.limit:
        # A stratified subset: the same fraction of every class.
        keep = np.sort(_stratified_take(digits.y, params.limit / len(digits), rng))
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    y = digits.y[keep]
    for cls in np.unique(y):
        idx = rng.permutation(keep[y == cls])
        n_test = max(1, round(len(idx) * params.test_fraction))
        n_val = round(len(idx) * params.val_fraction)
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    out = {}
    for name, chunks in parts.items():
        idx = rng.permutation(np.concatenate(chunks))
        out[name] = Digits(x=digits.x[idx], y=digits.y[idx])
    return out


def add_player_digits(train: Digits, player: Digits, data: DataParams, seed: int) -> Digits:
    """`train` with the player digits added (at most `player_max_fraction` of it, a seeded choice) and
    shuffled; `train` itself, unchanged, when there are none, so its file stays byte-identical."""
    if data.player_max_fraction < 0:
        raise ValueError("data.player_max_fraction must be >= 0")
    if not data.include_player or len(player) == 0:
        return train
    # A generator of its own: taking player digits in never changes which MNIST digits go where.
    rng = np.random.default_rng([seed, 1])
    take = np.arange(len(player))
    if data.player_max_fraction:
        cap = int(len(train) * data.player_max_fraction)
        if len(player) > cap:
            take = np.sort(rng.permutation(len(player))[:cap])
    x = np.concatenate([train.x, player.x[take]])
    y = np.concatenate([train.y, player.y[take]])
    order = rng.permutation(len(y))
    return Digits(x=x[order], y=y[order])


def _stratified_take(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    taken = [
        rng.permutation(np.flatnonzero(y == c))[: max(1, round((y == c).sum() * fraction))]
        for c in np.unique(y)
    ]
    return np.concatenate(taken)


def prepared_splits(
    params: Params, mnist: Digits, player: Digits | None
) -> tuple[dict[str, Digits], dict[str, Any]]:
    """The splits of `mnist` (with `data.include_player`, `player`'s digits join the train split) and
    their report: class counts per split, and how many player digits were available and added."""
    splits = stratified_split(mnist, params.prepare)
    mnist_train = len(splits["train"])
    if params.data.include_player:
        if player is None:
            raise ValueError("data.include_player is on, but no player digits were given")
        splits["train"] = add_player_digits(splits["train"], player, params.data, params.prepare.seed)
    report: dict[str, Any] = {
        name: {"total": len(part), "class_counts": part.class_counts()} for name, part in splits.items()
    }
    if player is not None and params.data.include_player:  # absent otherwise: the report stays as before
        report["train"]["player"] = {"available": len(player), "added": len(splits["train"]) - mnist_train}
    return splits, report
