"""Against a real cluster (the kind workflow): the RayService is ready and plays one prediction.

Runs only where KUBECONFIG points at a reachable cluster with environments/local deployed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import service_proxy

pytestmark = pytest.mark.cluster

NAMESPACE = "guessme"


@pytest.fixture(scope="module")
def api() -> Any:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or not Path(kubeconfig).is_file():
        pytest.skip("no cluster: KUBECONFIG is unset or names no file (the kind workflow sets it)")
    from kubernetes import client, config

    config.load_kube_config(config_file=kubeconfig)
    try:
        client.VersionApi().get_code(_request_timeout=5)
    except Exception as err:  # any transport error means: no reachable cluster
        pytest.skip(f"no cluster: {kubeconfig} names an unreachable API server ({err})")
    return client


def test_rayservice_is_ready(api: Any) -> None:
    service = api.CustomObjectsApi().get_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayservices", "guessme-serve"
    )
    conditions = {c["type"]: c["status"] for c in service.get("status", {}).get("conditions", [])}
    assert conditions.get("Ready") == "True", service.get("status")


def test_one_prediction(api: Any) -> None:
    """POST /predict through the API server's service proxy to the Serve Service KubeRay created."""
    blank = [[0.0] * 28 for _ in range(28)]
    for row in range(6, 22):
        blank[row][14] = 1.0  # a vertical stroke: a "1"
    status, body = service_proxy.post_json(
        api.ApiClient(), NAMESPACE, "guessme-serve-serve-svc", 8000, "predict", {"pixels": blank}
    )
    if status == 503:
        pytest.fail(f"Serve answers but has no model: set environments/local/model.env ({body})")
    assert status == 200, body
    assert 0 <= body["digit"] <= 9
    assert len(body["probabilities"]) == 10
