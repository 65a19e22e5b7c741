"""Fetch a registered model in a child process and hand the replica a self-contained copy.

Loading an MLflow `pt2` model imports MLflow (and with it pyarrow, opentelemetry, ...) and the
torch.export deserialiser (sympy, ...): about 200 MB that a replica would keep for its whole
life but never use to answer. So a short-lived child interpreter does the loading: it loads
the version with mlflow.pytorch (MLflow's own checks included), traces the graph to TorchScript,
checks that the copy answers exactly like the original, and writes it with the version's
metrics. The replica reads the TorchScript file with torch.jit.load, which needs none of that.

    python -m guessme_serve.registry_child models:/guessme-cnn/3 OUT_DIR
"""

import json
import sys
from pathlib import Path

import torch

from guessme_core import IMAGE_SIZE

MODEL_FILE = "model.ts"
METRICS_FILE = "metrics.json"


def export(uri: str, out: Path) -> None:
    import mlflow.pytorch

    from guessme_serve.model_holder import parse_model_uri, version_metrics

    torch.set_num_threads(1)
    name, version = parse_model_uri(uri)
    module = mlflow.pytorch.load_model(uri, map_location="cpu")
    if isinstance(module, torch.nn.Module) and not isinstance(module, torch.fx.GraphModule):
        module.eval()  # torch.export (pt2) graphs are already in inference form and have no train mode
    probe = torch.rand(5, 1, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        traced = torch.jit.trace(module, torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE), check_trace=False)
        if not torch.equal(traced(probe), module(probe)):  # another batch size too: nothing baked in
            raise ValueError(f"the TorchScript copy of {uri} does not answer exactly like the model")
    torch.jit.save(traced, str(out / MODEL_FILE))
    (out / METRICS_FILE).write_text(json.dumps(version_metrics(name, version)))


if __name__ == "__main__":
    export(sys.argv[1], Path(sys.argv[2]))
