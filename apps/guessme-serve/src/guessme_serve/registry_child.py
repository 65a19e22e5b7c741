"""The fallback for a version registered without a TorchScript copy: make one in a child process.

Registration stores a checked TorchScript copy next to each new version's pt2 model, and a replica
loads that directly (guessme_serve.model_holder). Versions registered before that have only the
pt2 (torch.export) model, and loading it imports MLflow (and with it pyarrow, opentelemetry, ...)
and the torch.export deserialiser (sympy, ...): about 200 MB that a replica would keep for its
whole life but never use to answer. So a short-lived child interpreter does it: it loads the
version with mlflow.pytorch (MLflow's own checks included) and writes the TorchScript copy that
guessme_core.torchscript traces and checks against it, the same as registration does. The
replica reads it with torch.jit.load, which needs none of that.

    python -m guessme_serve.registry_child models:/guessme-cnn/3 OUT_DIR   # writes OUT_DIR/model.ts
"""

import sys
from pathlib import Path

import torch

from guessme_core.torchscript import TORCHSCRIPT_FILE, save_torchscript_copy


def export(uri: str, out: Path) -> None:
    import mlflow.pytorch

    torch.set_num_threads(1)
    module = mlflow.pytorch.load_model(uri, map_location="cpu")
    if isinstance(module, torch.nn.Module) and not isinstance(module, torch.fx.GraphModule):
        module.eval()  # torch.export (pt2) graphs are already in inference form and have no train mode
    save_torchscript_copy(module, uri, out / TORCHSCRIPT_FILE)


if __name__ == "__main__":
    export(sys.argv[1], Path(sys.argv[2]))
