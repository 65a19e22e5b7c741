"""Compare the candidate with the deployed model on the same data (runs in the ML interpreter):

    python -m guessme_pipeline.compare --model models/model.pt --deployed models:/guessme-cnn/6 \\
        --player data/player --out compare.json

The candidate is the train stage's model file, the deployed model a registry URI; both are evaluated on
the held-out test set and, when there are enough, the players' labelled drawings, with the same code,
so the gate compares like with like. A deployed URI the registry does not hold is reported as missing
(`deployed: null`); any other error (MLflow down, bad data) fails the command.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

MIN_PLAYER_ROUNDS = 20  # fewer labelled drawings than this is noise, not a measurement


def load_test(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(path, allow_pickle=False) as npz:
        x, y = npz["x"], npz["y"].astype(np.int64)
    return torch.from_numpy(x).float().div_(255.0).unsqueeze(1), torch.from_numpy(y)


def load_player_rounds(folder: Path | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Player drawings as (images, labels, rows left out): the `player` stage's reading of the folder,
    withdrawn players and rounds without a dealt ticket left out. No rank rule: the served model's
    own ranking would favour the deployed model in this comparison."""
    from guessme_train.player import LabelRules, load_player_digits

    if folder is None or not folder.is_dir():
        return torch.empty(0, 1, 28, 28), torch.empty(0, dtype=torch.int64), 0
    digits, report = load_player_digits(folder, LabelRules(top_k=0))
    left_out = sum(report.skipped.values()) + sum(report.dropped.values())
    images = torch.from_numpy(digits.x).float().div_(255.0).unsqueeze(1)
    return images, torch.from_numpy(digits.y), left_out


@torch.no_grad()
def accuracy(model: Any, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    # A pt2 (torch.export) model has no eval()/train(): it is exported in eval mode already.
    logits = torch.cat([model(images[i : i + batch]) for i in range(0, len(images), batch)])
    return float((logits.argmax(1) == labels).float().mean())


def load_model(uri: str) -> tuple[Any | None, str | None]:
    """(model, None), or (None, reason) when the registry does not hold `uri`; other errors raise."""
    import mlflow.pytorch
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pytorch.load_model(uri), None
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None, str(exc)
        raise


Labelled = tuple[torch.Tensor, torch.Tensor]


def _metrics(model: Any, test: Labelled, player: Labelled) -> dict[str, float | int]:
    out: dict[str, float | int] = {
        "test_accuracy": accuracy(model, *test),
        "test_count": len(test[1]),
        "player_count": len(player[1]),
    }
    if len(player[1]) >= MIN_PLAYER_ROUNDS:
        out["player_accuracy"] = accuracy(model, *player)
    return out


def evaluate(
    model_file: Path, test_file: Path, deployed_uri: str | None, player_file: Path | None
) -> dict[str, Any]:
    from guessme_train.checkpoint import load_model as load_candidate

    test = load_test(test_file)
    player_x, player_y, skipped = load_player_rounds(player_file)
    candidate, _ = load_candidate(model_file)
    report: dict[str, Any] = {
        "player_rounds_skipped": skipped,
        "deployed_uri": deployed_uri,
        "candidate": _metrics(candidate, test, (player_x, player_y)),
        "deployed": None,
    }
    if deployed_uri:
        deployed, missing = load_model(deployed_uri)
        if deployed is None:
            report["deployed_missing"] = missing
        else:
            report["deployed"] = _metrics(deployed, test, (player_x, player_y))
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="guessme_pipeline.compare")
    ap.add_argument("--model", type=Path, default=Path("models/model.pt"), help="the candidate")
    ap.add_argument("--test", type=Path, default=Path("data/prepared/test.npz"))
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
