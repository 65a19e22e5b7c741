"""DVC stage `register` (its CLI; dvc.yaml names every path): log the evaluated model to MLflow
(MLFLOW_TRACKING_URI) and register a new `guessme-cnn` version (guessme_train.mlflow_model); writes
and prints {name, version, uri, run_id, metrics} as JSON."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from guessme_train.checkpoint import load_model
from guessme_train.metrics_report import load_history
from guessme_train.mlflow_model import log_and_register
from guessme_train.params import load_params
from guessme_train.provenance import provenance_tags


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--history", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--raw", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="folder with train/val/test.npz")
    ap.add_argument("--reports", type=Path, required=True, help="figures/ and data.json: run artifacts")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--run-name")
    args = ap.parse_args(argv)

    if not os.environ.get("MLFLOW_TRACKING_URI"):
        ap.error("MLFLOW_TRACKING_URI is not set: start MLflow (make up) or point it at a tracking server")
    params = load_params(args.params)
    model, _ = load_model(args.model)
    data_files = {"raw": args.raw, **{s: args.data / f"{s}.npz" for s in ("train", "val", "test")}}
    artifacts = [
        p for p in (args.reports / "figures", args.reports / "data.json", args.metrics) if p.exists()
    ]
    registered = log_and_register(
        model,
        params,
        history=load_history(args.history),
        test_metrics=json.loads(args.metrics.read_text()),
        provenance=provenance_tags(data_files),
        artifacts=artifacts,
        run_name=args.run_name,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(registered.to_json())
    print(json.dumps(json.loads(registered.to_json())))


if __name__ == "__main__":
    main()
