"""A serving replica answers without torch or MLflow in its process (issue 15: replica memory).

torch alone costs a replica ~500 MB and MLflow ~200 MB more; the replica needs neither to answer:
it runs the version's ONNX copy in ONNX Runtime (guessme_core.onnx_model) on images from the
torch-free preprocessing. A fresh interpreter does what a replica does (imports the Serve app's
module, loads a model, answers a drawing over the WebSocket message path) and lists what it imported.
An import of either, anywhere on that path (a new `import torch` in a shared module, an eager
re-export), fails here.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import tiny_onnx

pytestmark = pytest.mark.unit

REPLICA = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    import guessme_serve.app  # what Ray Serve imports in the replica (serve-config.yaml import_path)
    from guessme_core.onnx_model import OnnxModel
    from guessme_serve.model_holder import LoadedModel, ModelHolder
    from guessme_serve.service import GuessmeService

    model = LoadedModel("models:/guessme-cnn/1", "1", OnnxModel(Path(sys.argv[1]).read_bytes()), "t", {})
    service = GuessmeService(ModelHolder(lambda uri: model))
    asyncio.run(service.configure({"model_uri": model.uri}))
    drawing = {"type": "predict", "id": 1, "width": 280, "height": 280,
               "strokes": [[[40, 120, 200], [40, 160, 240]]]}
    reply = json.loads(asyncio.run(service.ws_reply(json.dumps(drawing))))
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "mlflow", "torchvision"))
    print(json.dumps({"reply": reply.get("type"), "digit": reply.get("digit"), "heavy": heavy}))
    """
)


def test_a_replica_answers_without_importing_torch_or_mlflow(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(tiny_onnx())
    out = subprocess.run(
        [sys.executable, "-c", REPLICA, str(model)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["reply"] == "prediction", result
    assert result["digit"] in range(10)
    assert result["heavy"] == []
