"""DVC stage `evaluate` (its CLI; dvc.yaml names every path): held-out test metrics (metrics.json, a
DVC metric), the confusion matrix and learning curves (DVC plots as CSV, and PNG figures logged to
MLflow by the register stage), computed by guessme_train.metrics_report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from guessme_train.checkpoint import load_model
from guessme_train.datasets import load_digits
from guessme_train.metrics_report import (
    held_out_report,
    load_history,
    plot_confusion,
    plot_learning_curves,
    write_confusion_csv,
    write_learning_curves_csv,
)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--history", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--plots", type=Path, required=True, help="folder for the DVC plots' CSV files")
    ap.add_argument("--figures", type=Path, required=True, help="folder for the PNG figures")
    args = ap.parse_args(argv)

    model, _ = load_model(args.model)
    report = held_out_report(model, load_digits(args.test))
    history = load_history(args.history)
    metrics = report.metrics()
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    write_confusion_csv(args.plots / "confusion.csv", report)
    write_learning_curves_csv(args.plots / "learning_curves.csv", history)
    plot_confusion(args.figures / "confusion_matrix.png", report)
    plot_learning_curves(args.figures / "learning_curves.png", history)
    print(
        f"held-out test accuracy: {report.accuracy:.4f} on {len(report.actual)} digits "
        f"(loss {report.loss:.4f})",
        flush=True,
    )
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
