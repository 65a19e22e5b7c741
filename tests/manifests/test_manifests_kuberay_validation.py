"""KubeRay's own validation of RayServices and RayJobs: rules the CRD schema cannot express.

The operator checks every custom resource at reconcile time (ray-operator v1.7.0,
controllers/ray/utils/validation.go: ValidateRayServiceMetadata/Spec, ValidateRayJobMetadata/Spec,
ValidateRayClusterSpec; utils/constant.go MaxRayClusterNameLength 53, less 6 for a RayService or
RayJob). A resource that breaks one passes `kubectl apply` and the strict schemas, then only gets a
Warning event and never a cluster: no Serve, no training. Each rule below names its check there.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from manifest_tools import Obj, environments, find

pytestmark = pytest.mark.manifests

MAX_NAME = 53 - 6  # MaxRayServiceNameLength = MaxRayJobNameLength = MaxRayClusterNameLength - 6
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
START_PARAM_RESOURCES = ("num-cpus", "num-gpus", "memory", "resources")  # validateRayGroupResources


def _group_problems(where: str, group: Obj) -> list[str]:
    params = group.get("rayStartParams") or {}
    problems = []
    if any(params.get(k) for k in START_PARAM_RESOURCES) and group.get("resources"):
        problems.append(
            f"{where}: resources in both rayStartParams and `resources` (validateRayGroupResources)"
        )
    if "labels" in params:
        problems.append(f"{where}: rayStartParams.labels; use the group's `labels` (validateRayGroupLabels)")
    for key, value in (group.get("labels") or {}).items():
        name = key.rsplit("/", 1)[-1]
        if not LABEL_NAME.match(name) or len(name) > 63 or (value and not LABEL_NAME.match(value)):
            problems.append(
                f"{where}: label {key}={value} is not a valid Kubernetes label (validateRayGroupLabels)"
            )
    return problems


def cluster_spec_problems(where: str, spec: Obj) -> list[str]:
    """ValidateRayClusterSpec's rules on the groups, replicas and autoscaler options."""
    problems = _group_problems(f"{where}.headGroupSpec", spec["headGroupSpec"])
    autoscaling = bool(spec.get("enableInTreeAutoscaling"))
    for group in spec.get("workerGroupSpecs", []):
        at = f"{where}.workerGroupSpecs[{group['groupName']}]"
        problems += _group_problems(at, group)
        low, high = group.get("minReplicas"), group.get("maxReplicas")
        if not autoscaling and (low is None or high is None):
            problems.append(f"{at}: minReplicas and maxReplicas are required without autoscaling")
        if any(v is not None and v < 0 for v in (low, high)):
            problems.append(f"{at}: negative minReplicas/maxReplicas")
        if low is not None and high is not None and low > high:
            problems.append(f"{at}: minReplicas {low} > maxReplicas {high}")
    idle = (spec.get("autoscalerOptions") or {}).get("idleTimeoutSeconds")
    if idle is not None and idle < 0:
        problems.append(f"{where}.autoscalerOptions.idleTimeoutSeconds must be non-negative")
    return problems


def _name_problems(obj: Obj) -> list[str]:
    name = obj["metadata"]["name"]
    problems = []
    if len(name) > MAX_NAME:
        problems.append(f"{obj['kind']} {name}: name longer than {MAX_NAME} characters")
    if not DNS1035.match(name):
        problems.append(f"{obj['kind']} {name}: name is not a DNS-1035 label")
    return problems


def rayjob_problems(job: Obj) -> list[str]:
    """ValidateRayJobMetadata + ValidateRayJobSpec (validateDeletionConfiguration included)."""
    spec: dict[str, Any] = job["spec"]
    name = f"RayJob {job['metadata']['name']}"
    shutdown = bool(spec.get("shutdownAfterJobFinishes"))
    problems = _name_problems(job)
    if spec.get("suspend") and not shutdown:
        problems.append(f"{name}: suspend needs shutdownAfterJobFinishes: true")
    ttl = spec.get("ttlSecondsAfterFinished", 0)
    if ttl < 0 or (ttl > 0 and not shutdown):
        problems.append(f"{name}: ttlSecondsAfterFinished needs shutdownAfterJobFinishes and must be >= 0")
    if spec.get("rayClusterSpec") is None and not spec.get("clusterSelector"):
        problems.append(f"{name}: one of rayClusterSpec or clusterSelector must be set")
    if spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] <= 0:
        problems.append(f"{name}: activeDeadlineSeconds must be positive")
    if spec.get("backoffLimit") is not None and spec["backoffLimit"] < 0:
        problems.append(f"{name}: backoffLimit must be >= 0")
    if spec.get("rayClusterSpec"):
        problems += cluster_spec_problems(f"{name} spec.rayClusterSpec", spec["rayClusterSpec"])
    return problems


def rayservice_problems(service: Obj) -> list[str]:
    """ValidateRayServiceMetadata + ValidateRayServiceSpec."""
    spec = service["spec"]
    name = f"RayService {service['metadata']['name']}"
    problems = _name_problems(service)
    head_service = spec["rayClusterConfig"]["headGroupSpec"].get("headService") or {}
    if (head_service.get("metadata") or {}).get("name"):
        problems.append(f"{name}: headGroupSpec.headService.metadata.name must not be set")
    return problems + cluster_spec_problems(f"{name} spec.rayClusterConfig", spec["rayClusterConfig"])


def kuberay_problems(objs: list[Obj]) -> list[str]:
    problems: list[str] = []
    for obj in objs:
        if obj["kind"] == "RayJob":
            problems += rayjob_problems(obj)
        elif obj["kind"] == "RayService":
            problems += rayservice_problems(obj)
    return problems


@pytest.mark.parametrize("env", environments())
def test_kuberay_validation(env: str, rendered: dict[str, list[Obj]]) -> None:
    assert {o["kind"] for o in rendered[env]} >= {"RayService", "RayJob"}
    assert kuberay_problems(rendered[env]) == []


def test_suspended_rayjob_without_shutdown_is_caught(rendered: dict[str, list[Obj]]) -> None:
    job = copy.deepcopy(find(rendered["local"], "RayJob", "guessme-train"))
    job["spec"]["shutdownAfterJobFinishes"] = False
    problems = rayjob_problems(job)
    assert any("suspend needs shutdownAfterJobFinishes" in p for p in problems), problems
    assert any("ttlSecondsAfterFinished" in p for p in problems), problems


def test_worker_replicas_and_resources_are_caught(rendered: dict[str, list[Obj]]) -> None:
    service = copy.deepcopy(find(rendered["local"], "RayService", "guessme-serve"))
    group = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    group["minReplicas"], group["maxReplicas"] = 3, 2
    group["resources"] = {"CPU": "1"}  # while rayStartParams has num-cpus
    problems = rayservice_problems(service)
    assert any("minReplicas 3 > maxReplicas 2" in p for p in problems), problems
    assert any("validateRayGroupResources" in p for p in problems), problems


def test_long_name_is_caught(rendered: dict[str, list[Obj]]) -> None:
    job = copy.deepcopy(find(rendered["local"], "RayJob", "guessme-train"))
    job["metadata"]["name"] = "guessme-train-" + "x" * 40
    assert any("longer than 47" in p for p in rayjob_problems(job))
