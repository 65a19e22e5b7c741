"""Log a trained model to MLflow and register it as a new version of `guessme-cnn`.

Model format: MLflow 3's `pt2` (torch.export). It loads with `mlflow.pytorch.load_model(uri)`
without unpickling any code (no MLFLOW_ALLOW_PICKLE_DESERIALIZATION, no dependency on this
repository's classes), and the signature marks the batch dimension -1 with an input example of
batch > 1, so the export keeps it dynamic: the loaded model takes (N, 1, 28, 28) float32 for any
N >= 1. The loaded object is a torch.fx GraphModule already in inference mode: callers must not
call `.eval()`/`.train()` on it (it raises), and should wrap calls in `torch.inference_mode()`.

Serving copy: before the version is registered, the logged pt2 model is loaded back from the
tracking server, exported to ONNX and checked to answer like it in ONNX Runtime
(guessme_core.onnx_export), and that copy is added to the logged model's artifacts
(`onnx/model.onnx`). Serving replicas run it with ONNX Runtime, fetched over the artifact proxy,
without MLflow or torch (guessme_serve.model_holder). The version is created only once the copy is
stored, so every version registered here has one.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from guessme_contracts.model_uri import ModelRef
from guessme_core.onnx_export import save_onnx_copy
from guessme_core.onnx_model import ONNX_DIR, ONNX_FILE
from guessme_train.loop import EpochMetrics
from guessme_train.params import Params

EXPERIMENT = "guessme"
MODEL_ARTIFACT = "model"


@dataclass(frozen=True)
class RegisteredModel:
    """What the register stage prints and writes (machine-readable, for the pipeline)."""

    name: str
    version: int
    uri: str  # models:/<name>/<version>: immutable, what deployments name
    run_id: str
    metrics: dict[str, float]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def model_signature() -> object:
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 1, 28, 28), "images")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 10), "logits")]),
    )


def input_example(batch: int) -> np.ndarray:
    """Real-looking zeros would do for tracing; a few random images make the logged example useful."""
    if batch < 2:
        raise ValueError("the input example needs a batch > 1, or pt2 export freezes the batch size")
    return np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)


def log_and_register(
    model: nn.Module,
    params: Params,
    *,
    history: Sequence[EpochMetrics],
    test_metrics: Mapping[str, float],
    provenance: Mapping[str, str],
    artifacts: Sequence[Path] = (),
    run_name: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
) -> RegisteredModel:
    """One MLflow run (params, per-epoch metrics, test metrics, data version, git commit, artifacts, the
    model with signature and input example, and its checked ONNX copy) and one new registered
    version carrying the test metrics."""
    import mlflow
    import mlflow.pytorch
    from mlflow import MlflowClient

    name = params.register.model_name
    model = model.cpu().eval()
    tags = {**provenance, **(extra_tags or {})}
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params(params.flat())
        mlflow.set_tags(tags)
        for m in history:
            values = {k: v for k, v in m.as_dict().items() if k != "epoch" and np.isfinite(v)}
            mlflow.log_metrics(values, step=m.epoch)
        mlflow.log_metrics(dict(test_metrics))
        for path in artifacts:
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
            else:
                mlflow.log_artifact(str(path))
        with torch.no_grad():
            info = mlflow.pytorch.log_model(
                model,
                name=MODEL_ARTIFACT,
                serialization_format="pt2",
                signature=model_signature(),
                input_example=input_example(params.register.example_batch),
                # Named, not inferred: inference re-loads the model in a subprocess (slow, no new facts).
                pip_requirements=[
                    f"torch=={torch.__version__.split('+')[0]}",
                    f"mlflow=={mlflow.__version__}",
                    "numpy",
                ],
                # MLflow's serving check sends the example as JSON lists, which this flavor's pyfunc
                # cannot take; the tests load the model in a fresh process instead.
                validate_serving_input=False,
            )
        # The version is created only once its serving copy is stored: no reader sees one without it.
        store_onnx_copy(info.model_id, info.model_uri)
        version = mlflow.register_model(info.model_uri, name, await_registration_for=120).version
    client = MlflowClient()
    for key, value in {**{k: str(v) for k, v in test_metrics.items()}, **tags}.items():
        client.set_model_version_tag(name, str(version), key, value)
    accuracy = test_metrics.get("test_accuracy")
    client.update_model_version(
        name,
        str(version),
        description=f"Held-out test accuracy {accuracy}; data {tags.get('data.version')}; "
        f"commit {tags.get('git.commit')}",
    )
    return RegisteredModel(
        name=name,
        version=int(version),
        uri=ModelRef(name, int(version)).uri,
        run_id=run.info.run_id,
        metrics={k: float(v) for k, v in test_metrics.items()},
    )


def store_onnx_copy(model_id: str, model_uri: str) -> None:
    """Load the logged pt2 model back as stored (what the registry will serve), make its checked ONNX
    copy and add it to the logged model's artifacts (guessme_core.onnx_model names where)."""
    import mlflow.pytorch
    from mlflow import MlflowClient

    stored = mlflow.pytorch.load_model(model_uri, map_location="cpu")
    with tempfile.TemporaryDirectory(prefix="guessme-onnx-") as tmp:
        path = save_onnx_copy(stored, model_uri, Path(tmp) / ONNX_FILE)
        MlflowClient().log_model_artifact(model_id, str(path), artifact_path=ONNX_DIR)
