"""The fallback for a version registered without an ONNX copy: make one in a child process.

Registration stores a checked ONNX copy next to each new version's pt2 model, and a replica loads
that directly (guessme_serve.model_holder). Versions registered before that have only the pt2
(torch.export) model, and loading it imports MLflow (and with it pyarrow, opentelemetry, ...), torch
and the torch.export deserialiser: about 700 MB that a replica would keep for its whole life but
never use to answer. So a short-lived child interpreter does it: it loads the version with
mlflow.pytorch (MLflow's own checks included) and writes the ONNX copy that
guessme_core.onnx_export exports and checks against it, the same as registration does. The replica
reads it with ONNX Runtime, which needs none of that.

    python -m guessme_serve.registry_child models:/guessme-cnn/3 OUT_DIR   # writes OUT_DIR/model.onnx
"""

import sys
from pathlib import Path

import torch

from guessme_core.onnx_export import save_onnx_copy
from guessme_core.onnx_model import ONNX_FILE


def export(uri: str, out: Path) -> None:
    import mlflow.pytorch

    torch.set_num_threads(1)
    module = mlflow.pytorch.load_model(uri, map_location="cpu")
    if isinstance(module, torch.nn.Module) and not isinstance(module, torch.fx.GraphModule):
        module.eval()  # torch.export (pt2) graphs are already in inference form and have no train mode
    save_onnx_copy(module, uri, out / ONNX_FILE)


if __name__ == "__main__":
    export(sys.argv[1], Path(sys.argv[2]))
