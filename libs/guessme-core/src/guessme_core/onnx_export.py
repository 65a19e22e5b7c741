"""The ONNX copy that serving loads: exported from the registered model and checked against it.

A registered version's MLflow format is `pt2` (torch.export); serving it would need torch and
MLflow in every replica. Registration (guessme_train.mlflow_model) stores an ONNX copy next to
each new version's pt2 model, and the serving fallback for older versions
(guessme_serve.registry_child) makes one on the fly; both export and check it here, so the copy a
replica serves (guessme_core.onnx_model) is always one that answered like the registered model.

The check runs the copy in ONNX Runtime exactly as a replica does, on a seeded batch of another
size than the export's (a batch size baked into the graph fails it). ONNX Runtime's kernels round
differently from torch's (BatchNorm is folded into the convolutions), so "answers like" means the
same digits and class probabilities within MAX_PROB_DIFF; measured on the trained CNN: ~1e-7.
"""

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from guessme_core.model_io import IMAGE_SIZE
from guessme_core.onnx_model import INPUT_NAME, OUTPUT_NAME, OnnxModel, softmax

MAX_PROB_DIFF = 1e-4
EXPORT_BATCH = 2
CHECK_BATCH = 5


def onnx_copy(module: Callable[[torch.Tensor], torch.Tensor], what: str) -> bytes:
    """`module` (in inference form) exported to ONNX with a dynamic batch dimension; raise ValueError
    unless ONNX Runtime answers a seeded batch like `module` does. `what` names the model in errors."""
    example = torch.zeros(EXPORT_BATCH, 1, IMAGE_SIZE, IMAGE_SIZE)
    with warnings.catch_warnings():  # the exporter's notes on its own internals, not ours to act on
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,  # type: ignore[arg-type]  # an nn.Module or a torch.export GraphModule
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    if program is None:
        raise ValueError(f"exporting {what} to ONNX produced no program")
    data: bytes = program.model_proto.SerializeToString()
    why = _differs(module, OnnxModel(data))
    if why:
        raise ValueError(f"the ONNX copy of {what} {why}")
    return data


def save_onnx_copy(module: Callable[[torch.Tensor], torch.Tensor], what: str, path: Path) -> Path:
    """`onnx_copy` written to `path` (what OnnxModel reads back)."""
    path.write_bytes(onnx_copy(module, what))
    return path


def _differs(module: Callable[[torch.Tensor], torch.Tensor], copy: OnnxModel) -> str:
    """Why `copy` does not stand in for `module` on a fixed batch ("" if it does)."""
    images = torch.rand(CHECK_BATCH, 1, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = torch.softmax(module(images), dim=1).numpy()
    got = softmax(copy(images.numpy()))
    if got.shape != want.shape:
        return f"answers shape {got.shape}, the model {want.shape}"
    diff = float(np.abs(want - got).max())
    if diff > MAX_PROB_DIFF or not np.array_equal(want.argmax(axis=1), got.argmax(axis=1)):
        return f"answers differently (max probability difference {diff:.2g})"
    return ""
