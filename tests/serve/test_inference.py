"""The served model's inference copy (guessme_serve.inference): frozen and optimised, it reads every
probe drawing as the traced model does, and a copy that answers differently is never served."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from guessme_contracts.probes import packaged_probes
from guessme_core import IMAGE_SIZE, GuessmeCNN, strokes_to_image
from guessme_serve import inference
from guessme_serve.model_holder import LoadedModel

pytestmark = pytest.mark.unit


def traced(seed: int = 0) -> torch.jit.ScriptModule:
    """A GuessmeCNN with non-trivial BatchNorm statistics, traced as the registry copy is."""
    torch.manual_seed(seed)
    module = GuessmeCNN(width=8)
    with torch.no_grad():  # what training leaves: BatchNorm that folding must carry over
        for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            assert bn.running_mean is not None
            assert bn.running_var is not None
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return torch.jit.trace(module.eval(), torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE), check_trace=False)


def probabilities(module: object, images: list[np.ndarray]) -> np.ndarray:
    return LoadedModel("models:/m/1", "1", module, "", {}).probabilities(images)  # type: ignore[arg-type]


def test_the_optimised_copy_reads_every_probe_drawing_as_the_traced_model() -> None:
    original = traced()
    fast = inference.optimize(original)
    assert fast is not original
    assert isinstance(fast, torch.jit.ScriptModule)
    assert "batch_norm" not in str(fast.graph)  # folded into the convolutions
    images = [strokes_to_image(p.strokes, p.width, p.height) for p in packaged_probes()]
    want, got = probabilities(original, images), probabilities(fast, images)
    assert np.array_equal(want.argmax(axis=1), got.argmax(axis=1))
    assert np.abs(want - got).max() <= inference.MAX_PROB_DIFF
    for batch in (1, 3, len(images)):  # any batch size the micro-batcher forms
        assert probabilities(fast, images[:batch]).shape == (batch, 10)


def test_a_copy_that_answers_differently_is_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    original, other = traced(seed=0), traced(seed=1)  # another model stands in for a broken optimisation
    monkeypatch.setattr(torch.jit, "optimize_for_inference", lambda module: torch.jit.freeze(other))
    assert inference.optimize(original) is original


def test_a_failing_optimisation_serves_the_model_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(module: object) -> object:
        raise RuntimeError("unsupported graph")

    monkeypatch.setattr(torch.jit, "optimize_for_inference", fail)
    original = traced()
    assert inference.optimize(original) is original


def test_a_plain_module_is_served_as_it_is() -> None:
    module = GuessmeCNN(width=4).eval()
    assert inference.optimize(module) is module


def test_the_loader_wrapper_keeps_everything_but_the_module() -> None:
    original = traced()
    loaded = LoadedModel("models:/guessme-cnn/7", "7", original, "2026-01-01T00:00:00+00:00", {"acc": 0.9})
    model = inference.optimizing(lambda uri: loaded)("models:/guessme-cnn/7")
    assert (model.uri, model.version, model.loaded_at, model.metrics) == (
        loaded.uri, loaded.version, loaded.loaded_at, loaded.metrics,
    )  # fmt: skip
    assert model.module is not original
    assert isinstance(model.module, torch.jit.ScriptModule)
