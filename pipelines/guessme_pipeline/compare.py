"""Compare the candidate with the deployed model on the same data (runs in the ML interpreter):

    python -m guessme_pipeline.compare --model models/model.pt --test data/prepared/test.npz \\
        --deployed models:/guessme-cnn/6 --player data/player --out compare.json

The candidate is the train stage's model file, the deployed model a registry URI; both are evaluated on
the held-out test set and, when there are enough, the players' labelled drawings, with the training
package's own loaders (guessme_train.datasets, guessme_train.player_rounds) and predictor
(guessme_train.loop.predict), so the gate compares like with like and reads data as training does. A
deployed URI the registry does not hold is reported as missing (`deployed: null`); any other error
(MLflow down, bad data) fails the command. The Airflow environment only starts this module in the ML
interpreter (guessme_pipeline.ml), never imports it.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from guessme_train.checkpoint import load_model as load_candidate
from guessme_train.datasets import IMAGE_SHAPE, Digits, load_digits
from guessme_train.loop import predict
from guessme_train.player_rounds import LabelRules, load_player_digits

MIN_PLAYER_ROUNDS = 20  # fewer labelled drawings than this is noise, not a measurement
# The comparison's own reading of the rounds, not the training set's (params.yaml `player:`): withdrawn
# players and rounds without a dealt ticket are left out, but no rank rule, since the served model's own
# ranking would favour the deployed model here.
COMPARISON_RULES = LabelRules(top_k=0, min_probability=0.0, require_ticket=True)


def load_player_rounds(folder: Path | None) -> tuple[Digits, int]:
    """The players' labelled drawings in `folder`, read by the `player` stage's reader under
    COMPARISON_RULES (a resent round counts once, a bad line or a half-written last one is left out, as
    there), and how many rows were skipped or dropped; an empty set when nobody has played."""
    if folder is None or not folder.is_dir():
        return Digits(x=np.zeros((0, *IMAGE_SHAPE), np.uint8), y=np.zeros(0, np.int64)), 0
    digits, report = load_player_digits(folder, COMPARISON_RULES)
    left_out = sum(report.skipped.values()) + sum(report.dropped.values())
    return digits, left_out


def accuracy(model: torch.nn.Module, digits: Digits) -> float:
    return float((predict(model, digits.images()).argmax(1) == digits.labels()).float().mean())


def load_model(uri: str) -> tuple[torch.nn.Module | None, str | None]:
    """(model, None), or (None, reason) when the registry does not hold `uri`; other errors raise."""
    import mlflow.pytorch
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pytorch.load_model(uri), None
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None, str(exc)
        raise


def _metrics(model: torch.nn.Module, test: Digits, player: Digits) -> dict[str, float | int]:
    out: dict[str, float | int] = {
        "test_accuracy": accuracy(model, test),
        "test_count": len(test),
        "player_count": len(player),
    }
    if len(player) >= MIN_PLAYER_ROUNDS:
        out["player_accuracy"] = accuracy(model, player)
    return out


def evaluate(
    model_file: Path, test_file: Path, deployed_uri: str | None, player_folder: Path | None
) -> dict[str, Any]:
    test = load_digits(test_file)
    player, left_out = load_player_rounds(player_folder)
    candidate, _ = load_candidate(model_file)
    report: dict[str, Any] = {
        "player_rounds_skipped": left_out,
        "deployed_uri": deployed_uri,
        "candidate": _metrics(candidate, test, player),
        "deployed": None,
    }
    if deployed_uri:
        deployed, missing = load_model(deployed_uri)
        if deployed is None:
            report["deployed_missing"] = missing
        else:
            report["deployed"] = _metrics(deployed, test, player)
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="guessme_pipeline.compare")
    ap.add_argument("--model", type=Path, required=True, help="the candidate (the train stage's model file)")
    ap.add_argument("--test", type=Path, required=True, help="the held-out test split")
    ap.add_argument("--deployed", default="", help="the deployed model URI (empty: none)")
    ap.add_argument("--player", type=Path, help="the players' data folder (round shards, tombstones)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = evaluate(args.model, args.test, args.deployed or None, args.player)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
