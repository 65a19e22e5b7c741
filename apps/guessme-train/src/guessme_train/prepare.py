"""DVC stage `prepare` (its CLI; dvc.yaml names every path): the seeded, stratified train/val/test
split of raw MNIST (guessme_train.splits), the players' digits in train with `data.include_player`,
and the class-count report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from guessme_train.datasets import load_digits, save_digits
from guessme_train.params import load_params
from guessme_train.splits import prepared_splits


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", type=Path, required=True)
    ap.add_argument("--raw", type=Path, required=True)
    ap.add_argument("--player", type=Path, required=True, help="stage `player`'s digits")
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--report", type=Path, required=True)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    player = load_digits(args.player) if params.data.include_player else None
    splits, report = prepared_splits(params, load_digits(args.raw), player)
    for name, part in splits.items():
        save_digits(args.out_dir / f"{name}.npz", part)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({name: r["total"] for name, r in report.items()}))


if __name__ == "__main__":
    main()
