"""The ONNX copy registration stores with each version (guessme_train.mlflow_model,
guessme_core.onnx_export): it answers like the registered pt2 model, and a replica loads it without
MLflow, without torch and without the registry_child fallback."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from guessme_core.onnx_export import MAX_PROB_DIFF, onnx_copy
from guessme_core.onnx_model import ONNX_ARTIFACT, OnnxModel, softmax


@pytest.mark.integration
def test_registration_stores_a_copy_that_answers_like_the_pt2_model(trained_model, tmp_path: Path) -> None:
    import mlflow.artifacts
    import mlflow.pytorch

    copy_path = mlflow.artifacts.download_artifacts(
        f"{trained_model.uri}/{ONNX_ARTIFACT}", dst_path=str(tmp_path)
    )
    copy = OnnxModel(Path(copy_path).read_bytes())
    registered = mlflow.pytorch.load_model(trained_model.uri, map_location="cpu")
    assert isinstance(registered, torch.fx.GraphModule), "the registered format stays pt2 (torch.export)"
    with np.load(trained_model.test_data) as npz:
        digits = torch.tensor(npz["x"][:300], dtype=torch.float32).div(255).unsqueeze(1)
    with torch.inference_mode():
        for batch in (digits[:1], digits[:7], digits):
            want = torch.softmax(registered(batch), dim=1).numpy()
            got = softmax(copy(batch.numpy()))
            assert np.abs(got - want).max() <= MAX_PROB_DIFF, f"batch of {len(batch)} answered differently"
            assert np.array_equal(got.argmax(1), want.argmax(1))


@pytest.mark.integration
def test_a_replica_loads_the_stored_copy_without_mlflow_or_torch(trained_model, mlflow_server: str) -> None:
    """What a Serve replica does, in a fresh interpreter: the REST path only. The child fallback is
    disabled, so a version without a stored copy would fail here instead of silently taking seconds."""
    script = textwrap.dedent(
        """
        import json, sys
        from guessme_serve import model_holder
        def no_child(uri):
            raise AssertionError("registry_child started")
        model_holder.load_through_child = no_child
        loaded = model_holder.load_from_registry(sys.argv[1])
        print(json.dumps({
            "version": loaded.version,
            "test_accuracy": loaded.metrics.get("test_accuracy"),
            "heavy_imports": sorted(
                m for m in sys.modules if m.split(".")[0] in ("mlflow", "torch")
            ),
        }))
        """
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
    out = subprocess.run(
        [sys.executable, "-c", script, trained_model.uri],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["version"] == str(trained_model.version)
    assert result["test_accuracy"] == pytest.approx(trained_model.test_accuracy)
    assert result["heavy_imports"] == []


class _ExportsDifferently(torch.nn.Module):
    """Takes another branch while being exported than when run (torch.compiler.is_exporting), so its
    graph and its eager answers disagree, as they do for a model whose forward reads Python state."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = x.flatten(1)[:, :10] * 10
        return -logits if torch.compiler.is_exporting() else logits


@pytest.mark.unit
def test_a_copy_that_does_not_answer_like_the_model_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"^the ONNX copy of models:/x/1 answers differently \(max probability"
    ):
        onnx_copy(_ExportsDifferently(), "models:/x/1")
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    probe = torch.rand(3, 1, 28, 28)
    copy = OnnxModel(onnx_copy(linear, "models:/x/2"))
    with torch.inference_mode():
        np.testing.assert_allclose(copy(probe.numpy()), linear(probe).numpy(), atol=1e-5)
