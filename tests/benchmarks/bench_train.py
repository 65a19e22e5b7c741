"""Benchmark: the plain PyTorch loop against Ray Train with 2 workers, same data, same params.

Prints seconds per epoch, start-up overhead, held-out accuracy, and the ratio of Ray Train's time
to reach the plain loop's validation accuracy to the plain loop's time (goal: <= 1.3x). Figures
only: nothing here asserts a time. Epochs: GUESSME_BENCH_EPOCHS (default: params.yaml's).
Run: `make bench`, or `pytest -m benchmark tests/benchmarks/bench_train.py -s`.
"""

import os

import pytest
from support.model_fixtures import REPO, prepared_data

from guessme_train.datasets import load_digits
from guessme_train.evaluation import held_out_report
from guessme_train.loop import EpochMetrics
from guessme_train.params import load_params
from guessme_train.trainer import TrainResult, train_plain, train_ray

pytestmark = pytest.mark.benchmark


def seconds_to_reach(history: list[EpochMetrics], accuracy: float) -> float | None:
    """Training seconds (start-up excluded) until validation accuracy first reaches `accuracy`."""
    elapsed = 0.0
    for m in history:
        elapsed += m.seconds
        if m.val_accuracy >= accuracy - 1e-9:
            return elapsed
    return None


@pytest.mark.timeout(3600)  # two full trainings on 2 shared cores
def test_plain_loop_vs_ray_train_two_workers() -> None:
    params = load_params(REPO / "params.yaml")
    epochs = int(os.environ.get("GUESSME_BENCH_EPOCHS", params.train.epochs))
    params = params.replace(train={"epochs": epochs})
    files = prepared_data(params)
    train, val, test = (load_digits(files[s]) for s in ("train", "val", "test"))

    results: dict[str, TrainResult] = {
        "plain": train_plain(params.replace(train={"backend": "plain"}), train, val, progress=False),
        "ray x2": train_ray(params.replace(train={"backend": "ray", "num_workers": 2}), train, val),
    }
    accuracy = {name: held_out_report(r.model, test).accuracy for name, r in results.items()}

    batch = params.train.batch_size
    print(f"\n== training benchmark: {len(train)} train digits, {epochs} epochs, global batch {batch} ==")
    header = ("run", "s/epoch", "train s", "wall s", "start-up s", "val acc", "test acc")
    print("{:8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>9}".format(*header))
    for name, r in results.items():
        trained = sum(m.seconds for m in r.history)
        figures = (r.seconds_per_epoch, trained, r.seconds, r.seconds - trained)
        print(
            "{:8} {:8.2f} {:8.1f} {:8.1f} {:10.1f}".format(name, *figures),
            f"{r.history[-1].val_accuracy:8.4f} {accuracy[name]:9.4f}",
        )
    for name, r in results.items():
        print(f"{name:8} val acc per epoch: {' '.join(f'{m.val_accuracy:.4f}' for m in r.history)}")
    plain, ray = results["plain"], results["ray x2"]
    print(f"ray/plain seconds per epoch: {ray.seconds_per_epoch / plain.seconds_per_epoch:.2f}x")
    # The same accuracy: the lower of the two final validation accuracies, which both runs reached.
    target = min(plain.history[-1].val_accuracy, ray.history[-1].val_accuracy)
    t_plain, t_ray = seconds_to_reach(plain.history, target), seconds_to_reach(ray.history, target)
    if t_ray is not None and t_plain is not None:
        startup = ray.seconds - sum(m.seconds for m in ray.history)
        print(
            f"time to validation accuracy {target:.4f}: plain {t_plain:.1f} s, ray x2 {t_ray:.1f} s "
            f"-> ratio {t_ray / t_plain:.2f}x (goal <= 1.3x); "
            f"counting Ray's start-up: {(t_ray + startup) / t_plain:.2f}x"
        )
    plain_acc, ray_acc = accuracy["plain"], accuracy["ray x2"]
    print(f"held-out test accuracy (goal >= 0.988): plain {plain_acc:.4f}, ray x2 {ray_acc:.4f}")
    # Sanity only: both runs really trained.
    assert min(accuracy.values()) > 0.9
