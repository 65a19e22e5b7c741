"""Every pod template, including those inside Ray custom resources (which checkov skips), is hardened."""

from __future__ import annotations

import copy

import pytest
from manifest_tools import Obj, container_problems, describe, environments, find, pod_specs

pytestmark = pytest.mark.manifests


def problems_of(objs: list[Obj]) -> list[str]:
    return [
        f"{describe(o)} {where}: {problem}"
        for o in objs
        for where, pod in pod_specs(o)
        for problem in container_problems(pod)
    ]


@pytest.mark.parametrize("env", environments())
def test_every_pod_is_hardened(env: str, rendered: dict[str, list[Obj]]) -> None:
    assert problems_of(rendered[env]) == []


def test_ray_pods_are_covered(rendered: dict[str, list[Obj]]) -> None:
    wheres = {(o["kind"], w) for o in rendered["local"] for w, _ in pod_specs(o)}
    assert ("RayService", "spec.rayClusterConfig.headGroupSpec") in wheres
    assert ("RayJob", "spec.submitterPodTemplate") in wheres
    assert ("RayJob", "spec.rayClusterSpec.headGroupSpec") in wheres
    assert any(kind == "RayService" and "workerGroupSpecs" in w for kind, w in wheres)


def test_autoscaler_sidecar_is_hardened(rendered: dict[str, list[Obj]]) -> None:
    options = find(rendered["local"], "RayService", "guessme-serve")["spec"]["rayClusterConfig"]
    sidecar = {"name": "autoscaler", "image": "pinned:by-kuberay", **options["autoscalerOptions"]}
    assert container_problems({"containers": [sidecar]}) == []


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("allowPrivilegeEscalation", True, "allowPrivilegeEscalation"),
        ("readOnlyRootFilesystem", False, "readOnlyRootFilesystem"),
        ("capabilities", {"drop": ["NET_RAW"]}, "capabilities.drop lacks ALL"),
        ("seccompProfile", {"type": "Unconfined"}, "seccompProfile"),
        ("runAsNonRoot", False, "runAsNonRoot"),
    ],
)
def test_weakened_ray_worker_is_caught(
    rendered: dict[str, list[Obj]], field: str, value: object, expected: str
) -> None:
    service = copy.deepcopy(find(rendered["local"], "RayService", "guessme-serve"))
    worker = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    worker["containers"][0]["securityContext"][field] = value
    assert any(expected in p for p in problems_of([service]))


def test_missing_limits_and_floating_image_are_caught(rendered: dict[str, list[Obj]]) -> None:
    job = copy.deepcopy(find(rendered["local"], "RayJob", "guessme-train"))
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    del head["resources"]["limits"]
    head["image"] = "guessme-train:latest"
    found = problems_of([job])
    assert any("no limits.cpu" in p for p in found)
    assert any("not pinned" in p for p in found)
