"""The form a registered model serves in: its ONNX graph, run by ONNX Runtime, with no torch import.

A serving replica needs one thing from a model: logits for a batch of 28x28 images. torch itself
costs a replica ~500 MB of memory (its import alone; the CNN is 267k parameters) and ~3 s to import;
ONNX Runtime costs ~30 MB and runs this CNN's forward pass faster on one thread. So registration
stores an ONNX copy of each version (guessme_core.onnx_export, checked against the registered
model), and a replica loads it here. The graph's input and output names are the registered
signature's (guessme_train.mlflow_model: `images` -> `logits`), with a dynamic batch dimension.
"""

from __future__ import annotations

import numpy as np

# Where registration stores the copy inside a logged model's artifacts: <model>/onnx/model.onnx.
ONNX_DIR = "onnx"
ONNX_FILE = "model.onnx"
ONNX_ARTIFACT = f"{ONNX_DIR}/{ONNX_FILE}"
INPUT_NAME = "images"  # (N, 1, 28, 28) float32 in [0, 1]
OUTPUT_NAME = "logits"  # (N, 10) float32


class OnnxModel:
    """`model(images) -> logits` for an ONNX graph's bytes; raises ValueError (one line) for bytes
    that are not a graph with the expected input."""

    def __init__(self, data: bytes) -> None:
        import onnxruntime as ort  # here, not at module import: the export check imports this module too

        options = ort.SessionOptions()
        # One thread, no pool: a 28x28 CNN gains nothing from more, and on a small machine spinning
        # worker threads take CPU from the event loop that reads the players' sockets.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Graph optimisations fold each BatchNorm into its convolution and fuse the ReLUs.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT's warnings go to stderr, not our log
        try:
            self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf with a long message
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise ValueError(f"not a loadable ONNX model ({len(data)} bytes): {first}") from None
        inputs = [i.name for i in self._session.get_inputs()]
        if inputs != [INPUT_NAME]:
            raise ValueError(f"the ONNX model takes {inputs}, expected [{INPUT_NAME!r}]")

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(N, 1, 28, 28) float32 -> (N, 10) float32 logits. ORT releases the GIL while it runs."""
        return self._session.run(None, {INPUT_NAME: images})[0]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, shifted by each row's maximum so no exp overflows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float32)
    return exp / exp.sum(axis=1, keepdims=True)
