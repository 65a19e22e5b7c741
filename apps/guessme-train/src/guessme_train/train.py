"""DVC stage `train` (its CLI; dvc.yaml names every path): train the CNN with Ray Train or the plain loop.

Ray: the cluster RAY_ADDRESS names (how the same command runs unchanged as a RayJob entrypoint on
Kubernetes, and in the DAG under `make up`), else this clone's running `make up` Ray head, else a
private local Ray for the run (guessme_train.ray_cluster). Writes the model file and the per-epoch
history; logs seconds per epoch, workers and where the time outside the epochs went; prints a JSON
summary as the last line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from guessme_train.checkpoint import save_model
from guessme_train.datasets import load_digits
from guessme_train.device import NoGPUError
from guessme_train.metrics_report import save_history
from guessme_train.params import load_params
from guessme_train.trainer import format_phases, process_age, run_training, scale_line


def main(argv: list[str] | None = None) -> None:
    # Interpreter start and imports (torch): the part of the stage before main() runs.
    age = process_age()
    phases = {} if age is None else {"python start and imports": age}
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="folder with train/val.npz")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--history", type=Path, required=True)
    ap.add_argument("--backend", choices=["ray", "plain"], help="overrides params.yaml train.backend")
    ap.add_argument("--summary", type=Path, help="also write the JSON summary to this file")
    args = ap.parse_args(argv)

    mark = time.perf_counter()
    params = load_params(args.params)
    if args.backend:
        params = params.replace(train={"backend": args.backend})
    train, val = load_digits(args.data / "train.npz"), load_digits(args.data / "val.npz")
    phases["params and data loading"] = time.perf_counter() - mark
    try:
        result = run_training(params, train, val)
    except NoGPUError as error:  # a setting to change, not a crash: one line, and the old model stays
        raise SystemExit(f"[train] error: {error}") from error
    phases.update(result.phases)
    mark = time.perf_counter()
    save_model(args.model, result.model, params.model)
    save_history(args.history, result.history)
    phases["model and history export"] = time.perf_counter() - mark
    print(scale_line(result), flush=True)
    print(f"[train] outside the epochs: {format_phases(phases)}", flush=True)
    last = result.history[-1]
    summary = {
        "model": str(args.model),
        "backend": result.backend,
        "workers": result.workers,
        "threads_per_worker": result.threads,
        "device": result.device,
        "epochs": len(result.history),
        "seconds": round(result.seconds, 1),
        "seconds_per_epoch": round(result.seconds_per_epoch, 2),
        "seconds_outside_epochs": {name: round(s, 2) for name, s in phases.items()},
        "val_accuracy": last.val_accuracy,
        "train_loss": last.train_loss,
    }
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
