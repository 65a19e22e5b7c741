"""DVC stage `evaluate`: held-out test metrics (metrics.json, a DVC metric), the confusion matrix and
learning curves (DVC plots as CSV, and PNG figures logged to MLflow by the register stage)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from guessme_train.checkpoint import load_model
from guessme_train.datasets import load_digits
from guessme_train.evaluation import (
    held_out_report,
    load_history,
    plot_confusion,
    plot_learning_curves,
    write_confusion_csv,
    write_learning_curves_csv,
)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=Path("models/model.pt"))
    ap.add_argument("--history", type=Path, default=Path("models/history.json"))
    ap.add_argument("--test", type=Path, default=Path("data/prepared/test.npz"))
    ap.add_argument("--metrics", type=Path, default=Path("metrics.json"))
    ap.add_argument("--plots", type=Path, default=Path("reports/plots"))
    ap.add_argument("--figures", type=Path, default=Path("reports/figures"))
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
