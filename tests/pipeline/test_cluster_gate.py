"""The gate on Kubernetes (guessme_pipeline.cluster_tasks.evaluate): recorded test metrics are compared only
when both versions were tested on the same test set; the registry and the remote are stand-ins here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

SAME, OTHER = "md5-of-the-test-set", "md5-of-another-test-set"
PARAMS_TEXT = (Path(__file__).resolve().parents[2] / "params.yaml").read_text()  # the remote's params.yaml


def run_gate(
    monkeypatch: pytest.MonkeyPatch,
    candidate: dict[str, str],
    deployed_tags: dict[str, str] | None,
    deployed_uri: str | None = "models:/guessme-cnn/4",
    force: bool = False,
    params_text: str | None = PARAMS_TEXT,
) -> dict[str, Any]:
    from guessme_contracts.model_uri import ModelRef
    from guessme_pipeline import cluster_tasks, mlflow_rest, remote_promote

    deployed = ModelRef.parse(deployed_uri) if deployed_uri else None
    monkeypatch.setattr(remote_promote, "deployed", lambda target, env: (deployed, "f" * 40, params_text))
    monkeypatch.setattr(mlflow_rest, "version_tags", lambda name, version: deployed_tags)
    tagged: list[dict[str, str]] = []
    monkeypatch.setattr(mlflow_rest, "set_version_tags", lambda name, version, tags: tagged.append(tags))
    s = cluster_tasks.ClusterSettings.from_params(
        {"push_remote": "https://example.invalid/g.git", "force_promote": force}
    )
    registered = {
        "name": "guessme-cnn",
        "version": 5,
        "uri": "models:/guessme-cnn/5",
        "run_id": "r",
        "tags": candidate,
    }
    report = cluster_tasks.evaluate(s, registered)
    assert tagged[0]["gate.promote"] == str(report["decision"]["promote"]).lower()  # recorded on the version
    return report


def test_nothing_deployed_promotes_above_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    report = run_gate(monkeypatch, {"test_accuracy": "0.97", "data.md5.test": SAME}, None, deployed_uri=None)
    assert report["decision"]["promote"] is True


def test_a_better_model_on_the_same_test_set_promotes(monkeypatch: pytest.MonkeyPatch) -> None:
    deployed = {"test_accuracy": "0.95", "data.md5.test": SAME}
    report = run_gate(monkeypatch, {"test_accuracy": "0.97", "data.md5.test": SAME}, deployed)
    assert report["decision"]["promote"] is True
    assert report["deployed"] == {"test_accuracy": 0.95}


def test_a_model_that_is_not_better_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    deployed = {"test_accuracy": "0.97", "data.md5.test": SAME}
    report = run_gate(monkeypatch, {"test_accuracy": "0.971", "data.md5.test": SAME}, deployed)
    assert report["decision"]["promote"] is False


def test_metrics_from_another_test_set_are_not_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    deployed = {"test_accuracy": "0.50", "data.md5.test": OTHER}
    report = run_gate(monkeypatch, {"test_accuracy": "0.99", "data.md5.test": SAME}, deployed)
    assert report["decision"]["promote"] is False
    assert "another test set" in report["decision"]["reason"]


def test_a_deployed_version_the_registry_lost_counts_as_nothing_deployed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report = run_gate(monkeypatch, {"test_accuracy": "0.97", "data.md5.test": SAME}, None)
    assert report["decision"]["promote"] is True
    assert report["deployed_uri"] == "models:/guessme-cnn/4"


def test_a_remote_branch_without_params_is_an_error_not_default_thresholds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gate's thresholds are written only in params.yaml: without one there is nothing to gate by."""
    with pytest.raises(ValueError, match=r"has no params\.yaml at ffffffffffff"):
        run_gate(monkeypatch, {"test_accuracy": "0.9", "data.md5.test": SAME}, None, params_text=None)
