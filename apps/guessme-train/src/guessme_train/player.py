"""DVC stage `player` (its CLI; dvc.yaml names every path): the players' rounds as labelled digits,
under params.yaml's `player:` label rules (guessme_train.player_rounds), and the report of what each
rule dropped."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from guessme_train.datasets import save_digits
from guessme_train.player_rounds import LabelRules, load_player_digits


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, required=True)
    ap.add_argument("--player-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--report", type=Path, required=True)
    args = ap.parse_args(argv)
    digits, report = load_player_digits(args.player_dir, LabelRules.from_params_file(args.params))
    save_digits(args.out, digits)
    summary = report.as_dict(digits)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        json.dumps(
            {k: summary[k] for k in ("rows", "used", "skipped", "dropped", "duplicates", "incomplete")}
        )
    )


if __name__ == "__main__":
    main()
