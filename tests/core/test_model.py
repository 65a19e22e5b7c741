"""The shared CNN: shapes, dtypes, size, and the contract that callers pass plain [0, 1] images."""

import pytest
import torch

from guessme_core import NUM_CLASSES, GuessmeCNN

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("batch", [1, 7])
def test_forward_gives_one_logit_row_per_image(batch: int) -> None:
    model = GuessmeCNN().eval()
    out = model(torch.rand(batch, 1, 28, 28))
    assert out.shape == (batch, NUM_CLASSES)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_model_is_compact() -> None:
    n = sum(p.numel() for p in GuessmeCNN().parameters())
    assert 50_000 < n < 500_000, n


def test_eval_mode_is_deterministic_and_batch_independent() -> None:
    torch.manual_seed(0)
    model = GuessmeCNN().eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


def test_wrong_input_shape_fails_loudly() -> None:
    with pytest.raises(RuntimeError):
        GuessmeCNN().eval()(torch.rand(2, 28, 28))


def test_gradients_reach_every_parameter() -> None:
    model = GuessmeCNN().train()
    loss = torch.nn.functional.cross_entropy(model(torch.rand(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
