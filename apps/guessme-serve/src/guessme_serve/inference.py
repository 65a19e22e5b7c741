"""The loaded TorchScript model, made cheaper to run before it serves: frozen and optimised for inference.

`torch.jit.freeze` inlines the weights as constants, and `torch.jit.optimize_for_inference` folds
each BatchNorm into the convolution before it and picks the CPU's fast convolution kernels. Measured
on this CNN with one torch thread: 0.84 -> 0.61 ms for one drawing, 0.73 -> 0.42 ms per drawing in
a batch of 8 (the micro-batcher's batches under load). The forward pass was the largest single
cost of a prediction in the replica (py-spy, docs/architecture.md "Players at scale").

Folding BatchNorm changes the floating-point rounding, not the function: the optimised module is
served only if it answers a fixed batch with the original's probabilities to within MAX_PROB_DIFF
and the same digits; otherwise the original serves and the reason is logged.
"""

import dataclasses
import logging
import warnings
from collections.abc import Callable

import torch

from guessme_core import IMAGE_SIZE
from guessme_serve.model_holder import LoadedModel

log = logging.getLogger("guessme_serve")

MAX_PROB_DIFF = 1e-4  # float32 rounding of the folded BatchNorm is ~1e-6
CHECK_BATCH = 16  # another batch size than the trace's (2), as the registry copy's own check uses


def optimize(module: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The frozen, inference-optimised copy of a TorchScript module, or the module itself when it is
    not TorchScript or the copy does not answer like it."""
    if not isinstance(module, torch.jit.ScriptModule):
        return module
    try:
        with warnings.catch_warnings():  # TorchScript's deprecation notice: the served format is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            fast = torch.jit.optimize_for_inference(torch.jit.freeze(module.eval()))
        why = _differs(module, fast)
    except Exception as exc:  # an unusual graph: serve it as it is
        why = f"{type(exc).__name__}: {exc}"
    if why:
        log.warning("serving the model unoptimised: %s", why)
        return module
    return fast


def _differs(
    original: Callable[[torch.Tensor], torch.Tensor], fast: Callable[[torch.Tensor], torch.Tensor]
) -> str:
    """Why `fast` does not stand in for `original` on a fixed batch of images ("" if it does)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(CHECK_BATCH, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    with torch.inference_mode():
        want = torch.softmax(original(images), dim=1)
        got = torch.softmax(fast(images), dim=1)
    diff = float((want - got).abs().max())
    if diff > MAX_PROB_DIFF or not torch.equal(want.argmax(dim=1), got.argmax(dim=1)):
        return f"the optimised copy answers differently (max probability difference {diff:.2g})"
    return ""


def optimizing(loader: Callable[[str], LoadedModel]) -> Callable[[str], LoadedModel]:
    """A model loader (ModelHolder's) whose models serve optimised; the probe gate then scores the
    module that will actually answer players."""

    def load(uri: str) -> LoadedModel:
        model = loader(uri)
        return dataclasses.replace(model, module=optimize(model.module))

    return load
