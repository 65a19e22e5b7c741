"""Behaviour: the trained model recognises digits drawn as strokes on a 280x280 canvas, at
several sizes, positions and slants, through the shared preprocessing (what the game sends)."""

import mlflow.pytorch
import numpy as np
import pytest
import torch
from support.digit_strokes import draw, variations

from guessme_core import strokes_to_image, to_batch

pytestmark = pytest.mark.integration


def test_trained_model_recognises_canvas_drawings(trained_model) -> None:
    model = mlflow.pytorch.load_model(trained_model.uri)
    cases = [(d, v) for d in range(10) for v in variations(280)]
    images = [strokes_to_image(draw(d, canvas=280, **v), 280, 280) for d, v in cases]  # type: ignore[arg-type]
    labels = np.array([d for d, _ in cases])
    with torch.inference_mode():
        predicted = model(torch.from_numpy(to_batch(images))).argmax(1).numpy()
    per_digit = {d: float((predicted[labels == d] == d).mean()) for d in range(10)}
    accuracy = float((predicted == labels).mean())
    print(f"canvas drawings recognised: {accuracy:.3f} of {len(cases)}; per digit {per_digit}")
    assert accuracy >= 0.90, per_digit
    assert min(per_digit.values()) >= 0.5, per_digit  # no digit is simply unrecognisable
