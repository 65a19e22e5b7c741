"""DVC stage `train`: train the CNN with Ray Train (or the plain loop) on data/prepared.

On a local machine `ray.init()` starts a Ray for the run (state under RAY_TMPDIR); with RAY_ADDRESS
set it joins that cluster, which is how the same command runs unchanged as a RayJob entrypoint on
Kubernetes. Writes the model file and the per-epoch history; prints a JSON summary as the last line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from guessme_train.checkpoint import save_model
from guessme_train.datasets import load_digits
from guessme_train.evaluation import save_history
from guessme_train.params import DEFAULT_PARAMS, load_params
from guessme_train.trainer import run_training


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    ap.add_argument("--data", type=Path, default=Path("data/prepared"), help="folder with train/val.npz")
    ap.add_argument("--model", type=Path, default=Path("models/model.pt"))
    ap.add_argument("--history", type=Path, default=Path("models/history.json"))
    ap.add_argument("--backend", choices=["ray", "plain"], help="overrides params.yaml train.backend")
    ap.add_argument("--summary", type=Path, help="also write the JSON summary to this file")
    args = ap.parse_args(argv)

    params = load_params(args.params)
    if args.backend:
        params = params.replace(train={"backend": args.backend})
    result = run_training(params, load_digits(args.data / "train.npz"), load_digits(args.data / "val.npz"))
    save_model(args.model, result.model, params.model)
    save_history(args.history, result.history)
    last = result.history[-1]
    summary = {
        "model": str(args.model),
        "backend": result.backend,
        "epochs": len(result.history),
        "seconds": round(result.seconds, 1),
        "seconds_per_epoch": round(result.seconds_per_epoch, 2),
        "val_accuracy": last.val_accuracy,
        "train_loss": last.train_loss,
    }
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
