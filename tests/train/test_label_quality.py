"""Label quality with a real trained model: poisoned player labels are filtered out before training,
and a model trained on poisoned labels that slipped through is stopped by the promotion gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.digit_strokes import draw, variations
from support.model_fixtures import REPO, _params, prepared_data

from guessme_core import strokes_to_image
from guessme_train.player_rounds import LabelRules, load_player_digits, round_to_digit

pytestmark = pytest.mark.integration

POISONED_SHARE = 0.3
MAX_WRONG_AFTER_FILTER = 0.03


def poisoned_rounds(model: Any, seed: int = 0) -> tuple[list[dict[str, Any]], list[int]]:
    """Every test drawing as a saved round (probabilities from the served model, as the server stores
    them); 30% carry a wrong label, the digit a poisoner would pick at random. Returns the rounds and
    each one's true digit."""
    rng = np.random.default_rng(seed)
    drawings = [(d, draw(d, **v)) for d in range(10) for v in variations()]  # type: ignore[arg-type]
    probs = model.probabilities([strokes_to_image(s, 280, 280) for _, s in drawings])
    poisoned = set(rng.choice(len(drawings), int(POISONED_SHARE * len(drawings)), replace=False).tolist())
    rounds, truth = [], []
    for i, ((digit, strokes), p) in enumerate(zip(drawings, probs, strict=True)):
        label = int((digit + rng.integers(1, 10)) % 10) if i in poisoned else digit
        rounds.append(
            {
                "id": f"r{i}",
                "strokes": strokes,
                "width": 280,
                "height": 280,
                "target": label,
                "probabilities": [float(x) for x in p],
                "ticket": f"n{i}",  # every poisoner here played: the tickets are genuine
            }
        )
        truth.append(digit)
    return rounds, truth


def test_a_30_percent_poisoned_take_in_leaves_at_most_3_percent_wrong_labels(
    trained_model: Any, tmp_path: Path
) -> None:
    from guessme_serve.model_holder import load_from_registry

    model = load_from_registry(trained_model.uri)
    rounds, truth = poisoned_rounds(model)
    folder = tmp_path / "player"
    folder.mkdir()
    (folder / "rounds-20261130-0001.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rounds))
    rules = LabelRules.from_params_file(REPO / "params.yaml")
    wrong_before = sum(r["target"] != t for r, t in zip(rounds, truth, strict=True)) / len(rounds)

    digits, report = load_player_digits(folder, rules)
    # Each kept image is known by its pixels: its true digit, and whether its label was honest.
    truth_of = {round_to_digit(r)[0].tobytes(): t for r, t in zip(rounds, truth, strict=True)}
    assert len(truth_of) == len(rounds)  # every drawing is distinct
    kept_truth = np.asarray([truth_of[x.tobytes()] for x in digits.x])
    wrong_after = float(np.mean(digits.y != kept_truth)) if len(digits) else 1.0
    honest_kept = int((digits.y == kept_truth).sum()) / sum(
        r["target"] == t for r, t in zip(rounds, truth, strict=True)
    )
    print(
        f"\nlabel filter (top_k={rules.top_k}): {wrong_before:.1%} wrong before, {wrong_after:.2%} after; "
        f"kept {len(digits)}/{len(rounds)} rounds, {honest_kept:.0%} of the honest ones; "
        f"dropped {dict(report.dropped)}"
    )
    assert wrong_before == pytest.approx(POISONED_SHARE, abs=0.01)
    assert wrong_after <= MAX_WRONG_AFTER_FILTER
    assert honest_kept >= 0.8  # the filter keeps most honest drawings, not just everything out
    assert report.dropped["not_in_top_k"] + report.dropped["unlikely"] == len(rounds) - len(digits)


def test_the_gate_blocks_a_model_trained_on_poisoned_labels_that_slipped_through() -> None:
    """A targeted poisoning (every 7 in the train split labelled 1: a 1 is a 7's likely runner-up, so
    such rounds can pass the rank rule) trains a worse model; the gate compares it with the deployed
    model on the same held-out data and keeps the deployed one."""
    from guessme_pipeline.gate import GateParams, decide
    from guessme_train.datasets import Digits, load_digits
    from guessme_train.metrics_report import held_out_report
    from guessme_train.trainer import train_plain

    params = _params({"backend": "plain", "epochs": 1}).replace(augment={"enabled": False})
    files = prepared_data(params)
    full, val, test = (load_digits(files[name]) for name in ("train", "val", "test"))
    train = Digits(x=full.x[:4000], y=full.y[:4000])  # enough to tell the two apart, and fast
    poisoned = Digits(x=train.x, y=np.where(train.y == 7, 1, train.y))
    accuracy = {}
    for name, data in (("clean", train), ("poisoned", poisoned)):
        model = train_plain(params, data, val, progress=False).model.eval()
        accuracy[name] = held_out_report(model, test).accuracy
    gate = GateParams.from_params_file(REPO / "params.yaml")
    print(f"\ntest accuracy: clean {accuracy['clean']:.4f}, poisoned {accuracy['poisoned']:.4f}")
    blocked = decide({"test_accuracy": accuracy["poisoned"]}, {"test_accuracy": accuracy["clean"]}, gate)
    assert not blocked.promote, blocked.reason
    # The same gate does promote the clean model over the poisoned one: it tells them apart.
    assert decide({"test_accuracy": accuracy["clean"]}, {"test_accuracy": accuracy["poisoned"]}, gate).promote
