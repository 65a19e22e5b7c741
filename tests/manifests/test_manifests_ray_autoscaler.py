"""The RayService's autoscaler sidecar can reach the Kubernetes API: the KubeRay and Ray rules, encoded.

- KubeRay v1.7.0 injects the autoscaler into the head pod with only the pod's serviceAccountName set
  for it (ray-project/kuberay ray-operator/controllers/ray/common/pod.go: DefaultHeadPodTemplate,
  BuildAutoscalerContainer); autoscalerOptions.volumeMounts are appended to the sidecar
  (mergeAutoscalerOverrides). No token volume is added by KubeRay.
- Ray's KubeRay node provider reads the in-cluster service-account token and CA when it starts
  (ray-project/ray python/ray/autoscaler/_private/kuberay/node_provider.py: IN_CLUSTER_TOKEN_PATH,
  IN_CLUSTER_CA_CERT_PATH, load_k8s_secrets). With automountServiceAccountToken: false and no
  projected token in the sidecar, the autoscaler fails and the head never becomes Ready.
"""

from __future__ import annotations

import copy

import pytest
from manifest_tools import Obj, describe, environments, find

pytestmark = pytest.mark.manifests

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def autoscaler_token_problems(obj: Obj) -> list[str]:
    spec = obj["spec"].get("rayClusterConfig") or obj["spec"].get("rayClusterSpec") or {}
    if not spec.get("enableInTreeAutoscaling"):
        return []
    head = spec["headGroupSpec"]["template"]["spec"]
    if head.get("automountServiceAccountToken", True) is not False:
        return []  # the kubelet mounts the token into every container, the sidecar included
    mounts = [
        m
        for m in (spec.get("autoscalerOptions") or {}).get("volumeMounts", [])
        if m["mountPath"] == TOKEN_DIR
    ]
    if not mounts:
        return [
            f"{describe(obj)}: autoscaler sidecar has no service-account token: the head pod sets "
            "automountServiceAccountToken: false and autoscalerOptions.volumeMounts mounts nothing at "
            f"{TOKEN_DIR}"
        ]
    volumes = {v["name"]: v for v in head.get("volumes", [])}
    volume = volumes.get(mounts[0]["name"])
    sources = ((volume or {}).get("projected") or {}).get("sources", [])
    paths = {s["serviceAccountToken"]["path"] for s in sources if "serviceAccountToken" in s}
    paths |= {i["path"] for s in sources if "configMap" in s for i in s["configMap"].get("items", [])}
    missing = {"token", "ca.crt"} - paths
    if missing:
        return [
            f"{describe(obj)}: the autoscaler's token volume {mounts[0]['name']!r} lacks {sorted(missing)}"
        ]
    return []


@pytest.mark.parametrize("env", environments())
def test_kuberay_autoscaler_reads_the_service_account_token(env: str, rendered: dict[str, list[Obj]]) -> None:
    service = find(rendered[env], "RayService", "guessme-serve")
    assert service["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] is True
    problems = autoscaler_token_problems(service)
    assert not problems, "\n".join(problems)
    # The token reaches the sidecar only: the Ray head (Serve's user code) still has none.
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    assert head["automountServiceAccountToken"] is False
    assert all(m["mountPath"] != TOKEN_DIR for c in head["containers"] for m in c.get("volumeMounts", []))


@pytest.mark.parametrize("edit", ["no mount", "no ca"])
def test_autoscaler_without_token_is_caught(edit: str, rendered: dict[str, list[Obj]]) -> None:
    service = copy.deepcopy(find(rendered["local"], "RayService", "guessme-serve"))
    spec = service["spec"]["rayClusterConfig"]
    if edit == "no mount":  # as before this change
        del spec["autoscalerOptions"]["volumeMounts"]
        expected = "autoscaler sidecar has no service-account token"
    else:
        volume = next(v for v in spec["headGroupSpec"]["template"]["spec"]["volumes"] if "projected" in v)
        volume["projected"]["sources"] = [s for s in volume["projected"]["sources"] if "configMap" not in s]
        expected = "lacks ['ca.crt']"
    assert any(expected in p for p in autoscaler_token_problems(service))
