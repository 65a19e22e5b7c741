"""Held-out metrics, the confusion matrix and learning curves, as numbers, DVC plot files and images."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from torch import nn

from guessme_train.datasets import Digits
from guessme_train.loop import EpochMetrics, predict


@dataclass(frozen=True)
class HeldOutReport:
    accuracy: float
    loss: float
    confusion: np.ndarray  # (10, 10): rows actual, columns predicted
    predicted: np.ndarray  # (N,)
    actual: np.ndarray  # (N,)

    def metrics(self) -> dict[str, float]:
        """Flat numbers for metrics.json and MLflow: overall and per-class accuracy."""
        per_class = np.diag(self.confusion) / np.maximum(self.confusion.sum(axis=1), 1)
        return {
            "test_accuracy": round(self.accuracy, 6),
            "test_loss": round(self.loss, 6),
            "test_samples": len(self.actual),
            **{f"test_accuracy_digit_{d}": round(float(a), 6) for d, a in enumerate(per_class)},
        }


def held_out_report(model: nn.Module, test: Digits) -> HeldOutReport:
    if len(test) == 0:
        raise ValueError("the test set is empty")
    logits = predict(model, test.images())
    predicted = logits.argmax(1).numpy()
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (test.y, predicted), 1)
    return HeldOutReport(
        accuracy=float((predicted == test.y).mean()),
        loss=float(F.cross_entropy(logits, test.labels()).item()),
        confusion=confusion,
        predicted=predicted,
        actual=test.y,
    )


def write_confusion_csv(path: Path, report: HeldOutReport) -> None:
    """One row per test digit: DVC's `confusion` plot template counts (actual, predicted) pairs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["actual", "predicted"])
        writer.writerows(zip(report.actual.tolist(), report.predicted.tolist(), strict=True))


def write_learning_curves_csv(path: Path, history: Sequence[EpochMetrics]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "seconds"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for m in history:
            writer.writerow({k: v for k, v in m.as_dict().items() if k in fields} | {"epoch": m.epoch})


def save_history(path: Path, history: Sequence[EpochMetrics]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([m.as_dict() for m in history], indent=1) + "\n")


def load_history(path: Path) -> list[EpochMetrics]:
    return [EpochMetrics(**{**m, "epoch": int(m["epoch"])}) for m in json.loads(path.read_text())]


def plot_confusion(path: Path, report: HeldOutReport) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(report.confusion, cmap="Blues")
    for (i, j), n in np.ndenumerate(report.confusion):
        if n:
            colour = "white" if n > report.confusion.max() / 2 else "black"
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color=colour)
    ax.set(xlabel="predicted", ylabel="actual", xticks=range(10), yticks=range(10))
    ax.set_title(f"test accuracy {report.accuracy:.4f} ({len(report.actual)} digits)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_learning_curves(path: Path, history: Sequence[EpochMetrics]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [m.epoch for m in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [m.train_loss for m in history], label="train")
    loss_ax.plot(epochs, [m.val_loss for m in history], label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss")
    acc_ax.plot(epochs, [m.train_accuracy for m in history], label="train (augmented)")
    acc_ax.plot(epochs, [m.val_accuracy for m in history], label="validation")
    acc_ax.set(xlabel="epoch", ylabel="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
