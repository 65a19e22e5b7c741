"""The TorchScript copy that serving loads: traced from the registered model and checked against it.

A registered version's MLflow format is `pt2` (torch.export); loading that needs MLflow and the
torch.export deserialiser, about 200 MB of imports a serving replica would keep for its whole life.
A TorchScript copy loads with `torch.jit.load` alone. Registration (guessme_train.mlflow_model) stores
one next to each new version's pt2 model; the serving fallback for older versions
(guessme_serve.registry_child) makes one on the fly. Both make and check it here, so the copy a
replica serves is always one that answered exactly like the registered model.
"""

from collections.abc import Callable
from pathlib import Path

import torch

from guessme_core.model import IMAGE_SIZE

# Where registration stores the copy inside a logged model's artifacts: <model>/torchscript/model.ts.
TORCHSCRIPT_DIR = "torchscript"
TORCHSCRIPT_FILE = "model.ts"
TORCHSCRIPT_ARTIFACT = f"{TORCHSCRIPT_DIR}/{TORCHSCRIPT_FILE}"


def torchscript_copy(module: Callable[[torch.Tensor], torch.Tensor], what: str) -> torch.jit.ScriptModule:
    """Trace `module` (in inference form) to TorchScript; raise ValueError unless the copy answers a
    seeded batch bit-for-bit like `module` does. `what` names the model in the error."""
    probe = torch.rand(5, 1, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        traced = torch.jit.trace(module, torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE), check_trace=False)
        # A batch size other than the traced one too: a shape baked into the graph fails here.
        if not torch.equal(traced(probe), module(probe)):
            raise ValueError(f"the TorchScript copy of {what} does not answer exactly like the model")
    return traced


def save_torchscript_copy(module: Callable[[torch.Tensor], torch.Tensor], what: str, path: Path) -> Path:
    """`torchscript_copy` written to `path` (what torch.jit.load reads back)."""
    torch.jit.save(torchscript_copy(module, what), str(path))
    return path
