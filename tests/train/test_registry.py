"""MLflow logging and registration (the real `log_and_register`) against a real `mlflow server`."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.integration


def test_run_logs_params_curves_data_version_and_artifacts(trained_model, mlflow_server: str) -> None:
    client = MlflowClient(mlflow_server)
    run = client.get_run(trained_model.run_id)
    epochs = int(run.data.params["train.epochs"])
    assert run.data.params["register.model_name"] == "guessme-cnn"
    assert {"model.width", "augment.rotate_deg", "train.lr", "prepare.seed"} <= run.data.params.keys()
    curve = client.get_metric_history(trained_model.run_id, "val_accuracy")
    assert [m.step for m in curve] == list(range(1, epochs + 1))
    assert run.data.metrics["test_accuracy"] == pytest.approx(trained_model.test_accuracy)
    tags = run.data.tags
    assert len(tags["data.version"]) == 32
    assert {"data.md5.train", "data.md5.val", "data.md5.test", "git.commit", "git.dirty"} <= tags.keys()


def test_version_carries_test_metrics_and_provenance(trained_model, mlflow_server: str) -> None:
    client = MlflowClient(mlflow_server)
    version = client.get_model_version("guessme-cnn", str(trained_model.version))
    assert version.run_id == trained_model.run_id
    assert float(version.tags["test_accuracy"]) == pytest.approx(trained_model.test_accuracy)
    assert "test_accuracy_digit_7" in version.tags
    assert version.tags["data.version"] == client.get_run(trained_model.run_id).data.tags["data.version"]
    assert trained_model.uri == f"models:/guessme-cnn/{trained_model.version}"


def test_model_has_signature_and_input_example(trained_model) -> None:
    from mlflow.models import Model

    info = Model.load(trained_model.uri)
    assert info.signature is not None
    spec = info.signature.inputs.inputs[0]
    assert tuple(spec.shape) == (-1, 1, 28, 28)
    assert info.saved_input_example_info is not None


def test_registered_model_loads_in_another_process_for_any_batch_size(trained_model) -> None:
    """What serving does: `mlflow.pytorch.load_model(uri)` in a fresh process, batches of 1 and more."""
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np, torch, mlflow.pytorch
        model = mlflow.pytorch.load_model(sys.argv[1])
        with np.load(sys.argv[2]) as npz:
            x = torch.tensor(npz["x"], dtype=torch.float32).div(255).unsqueeze(1)
            y = torch.tensor(npz["y"])
        with torch.inference_mode():
            one = model(x[:1])
            seven = model(x[:7])
            logits = torch.cat([model(x[i : i + 500]) for i in range(0, len(x), 500)])
        print(json.dumps({
            "shapes": [list(one.shape), list(seven.shape)],
            "dtype": str(logits.dtype),
            "same": bool(torch.allclose(one[0], seven[0], atol=1e-4)),
            "accuracy": (logits.argmax(1) == y).float().mean().item(),
        }))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"}
    out = subprocess.run(
        [sys.executable, "-c", script, trained_model.uri, str(trained_model.test_data)],
        capture_output=True, text=True, timeout=300, env=env, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["shapes"] == [[1, 10], [7, 10]]
    assert result["dtype"] == "torch.float32"
    assert result["same"]
    assert result["accuracy"] == pytest.approx(trained_model.test_accuracy, abs=1e-6)


def test_second_version_is_a_different_real_model(trained_model, second_model_version) -> None:
    assert second_model_version.version > trained_model.version
    assert second_model_version.run_id != trained_model.run_id
    assert 0.8 < second_model_version.test_accuracy <= 1.0
