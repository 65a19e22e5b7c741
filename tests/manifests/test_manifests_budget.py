"""Each environment's CPU and memory requests, idle and while training, fit its documented nodes.

The scheduler places a pod by its requests (kubernetes.io/docs/concepts/configuration/
manage-resources-containers/): a pod's request is the sum of its containers' requests, or its largest
init container's if that is more. A pod that does not fit stays Pending. Counted here:
- the environment's Deployments and StatefulSets (times replicas);
- the RayService's head with the autoscaler sidecar KubeRay injects (autoscalerOptions.resources,
  else KubeRay v1.7.0's default 500m/512Mi: ray-operator/controllers/ray/common/pod.go
  BuildAutoscalerContainer) and its workers at minReplicas (the autoscaler adds more only where
  room is left);
- while training, the RayJob's head and submitter pods;
- the vendored charts' pods (KubeRay operator), and Airflow's from platform/airflow/values.yaml
  (scheduler, API server, DAG processor, triggerer; the migration Job finishes before training);
- the cluster's own pods, listed in environments/base/budget.yaml (an environment's own budget.yaml
  may replace its `nodes` or `cluster`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from airflow_chart import load_values
from kubernetes.utils.quantity import parse_quantity
from manifest_tools import REPO, Obj, describe, environments, find

pytestmark = pytest.mark.manifests

GI = Decimal(2**30)
KUBERAY_AUTOSCALER_DEFAULT = {"cpu": "500m", "memory": "512Mi"}
AIRFLOW_COMPONENTS = ("scheduler", "apiServer", "dagProcessor", "triggerer")


@dataclass(frozen=True)
class Request:
    what: str
    cpu: Decimal
    memory: Decimal


def requests_of(resources: Obj | None) -> tuple[Decimal, Decimal]:
    req = (resources or {}).get("requests") or {}
    return parse_quantity(req.get("cpu", "0")), parse_quantity(req.get("memory", "0"))


def pod_request(what: str, pod: Obj, sidecars: tuple[Obj, ...] = ()) -> Request:
    containers = [*pod.get("containers", []), *sidecars]
    cpu = sum((requests_of(c.get("resources"))[0] for c in containers), Decimal(0))
    mem = sum((requests_of(c.get("resources"))[1] for c in containers), Decimal(0))
    for init in pod.get("initContainers", []):
        icpu, imem = requests_of(init.get("resources"))
        cpu, mem = max(cpu, icpu), max(mem, imem)
    return Request(what, cpu, mem)


def workload_requests(
    objs: list[Obj], chart_objs: list[Obj], airflow_values: Obj, training: bool
) -> list[Request]:
    found: list[Request] = []
    for obj in [*objs, *chart_objs]:
        kind = obj["kind"]
        if kind in ("Deployment", "StatefulSet"):
            pod = pod_request(describe(obj), obj["spec"]["template"]["spec"])
            found += [pod] * int(obj["spec"].get("replicas", 1))
        elif kind == "RayService":
            cluster = obj["spec"]["rayClusterConfig"]
            sidecars: tuple[Obj, ...] = ()
            if cluster.get("enableInTreeAutoscaling"):
                options = cluster.get("autoscalerOptions") or {}
                sidecars = (
                    {"resources": options.get("resources") or {"requests": KUBERAY_AUTOSCALER_DEFAULT}},
                )
            found.append(
                pod_request(f"{describe(obj)} head", cluster["headGroupSpec"]["template"]["spec"], sidecars)
            )
            for group in cluster.get("workerGroupSpecs", []):
                worker = pod_request(
                    f"{describe(obj)} worker {group['groupName']}", group["template"]["spec"]
                )
                found += [worker] * int(group.get("minReplicas", 0))
        elif kind == "RayJob" and training:
            spec = obj["spec"]
            found.append(
                pod_request(
                    f"{describe(obj)} head", spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
                )
            )
            for group in spec["rayClusterSpec"].get("workerGroupSpecs", []):
                worker = pod_request(
                    f"{describe(obj)} worker {group['groupName']}", group["template"]["spec"]
                )
                found += [worker] * int(group.get("replicas", group.get("minReplicas", 0)))
            found.append(pod_request(f"{describe(obj)} submitter", spec["submitterPodTemplate"]["spec"]))
    git_sync = (airflow_values.get("dags") or {}).get("gitSync") or {}
    for component in AIRFLOW_COMPONENTS:
        settings = airflow_values.get(component) or {}
        cpu, mem = requests_of(settings.get("resources"))
        if git_sync.get("enabled") and component != "apiServer":
            scpu, smem = requests_of(git_sync.get("resources"))
            cpu, mem = cpu + scpu, mem + smem
        found += [Request(f"Airflow {component}", cpu, mem)] * int(settings.get("replicas", 1))
    return found


def load_budget(env: str, root: Path = REPO) -> Obj:
    """environments/base/budget.yaml, each key of environments/<env>/budget.yaml (if any) replacing its
    own; `file` names where the nodes come from."""
    budget = dict(yaml.safe_load((root / "environments/base/budget.yaml").read_text()))
    budget["file"] = "environments/base/budget.yaml"
    own = root / "environments" / env / "budget.yaml"
    if own.is_file():
        overrides = dict(yaml.safe_load(own.read_text()))
        budget.update(overrides)
        if "nodes" in overrides:
            budget["file"] = f"environments/{env}/budget.yaml"
    return budget


def budget_problems(env: str, budget: Obj, workloads: list[Request], state: str) -> list[str]:
    cluster = [
        Request(name, parse_quantity(r["cpu"]), parse_quantity(r["memory"]))
        for name, r in budget["cluster"].items()
    ]
    pods = [*workloads, *cluster]
    cpu = sum((p.cpu for p in pods), Decimal(0))
    mem = sum((p.memory for p in pods), Decimal(0))
    found = []
    for node, size in budget["nodes"].items():
        for resource, total, limit, unit, key in (
            ("cpu", cpu, parse_quantity(size["cpu"]), Decimal(1), "cpu"),
            ("memory", mem, parse_quantity(size["memory"]), GI, "memory"),
        ):
            if total > limit:
                top = sorted(workloads, key=lambda r: getattr(r, key), reverse=True)[:3]
                biggest = ", ".join(f"{r.what} {getattr(r, key) / unit:.2f}" for r in top)
                found.append(
                    f"environments/{env} ({state}): requests {total / unit:.2f} {resource} > "
                    f"{limit / unit:.2f} of node {node} ({budget['file']}); largest: {biggest}"
                )
    return found


def figures(workloads: list[Request], budget: Obj) -> tuple[Decimal, Decimal]:
    cluster = budget["cluster"].values()
    cpu = sum((w.cpu for w in workloads), Decimal(0)) + sum(
        (parse_quantity(c["cpu"]) for c in cluster), Decimal(0)
    )
    mem = sum((w.memory for w in workloads), Decimal(0)) + sum(
        (parse_quantity(c["memory"]) for c in cluster), Decimal(0)
    )
    return cpu, mem / GI


@pytest.mark.parametrize("env", environments())
@pytest.mark.parametrize("state", ["idle", "training"])
def test_requests_fit_the_budget(
    env: str, state: str, rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    budget = load_budget(env)
    workloads = workload_requests(rendered[env], chart_rendered[env], load_values(REPO), state == "training")
    whats = {w.what for w in workloads}
    assert {
        "Deployment guessme-platform/mlflow",
        "Deployment kuberay-system/kuberay-operator",
        "Airflow scheduler",
    } <= whats
    assert ("RayJob guessme/guessme-train head" in whats) == (state == "training")
    cpu, mem = figures(workloads, budget)
    print(f"{env} {state}: requests {cpu:.2f} CPU, {mem:.2f} GiB")  # figures for the report (pytest -s)
    problems = budget_problems(env, budget, workloads, state)
    assert not problems, "\n".join(problems)


def test_training_head_keeps_logical_cpus_apart_from_its_request(rendered: dict[str, list[Obj]]) -> None:
    """Ray schedules the two Train workers on the head's logical CPUs (num-cpus), not on the request."""
    head = find(rendered["local"], "RayJob", "guessme-train")["spec"]["rayClusterSpec"]["headGroupSpec"]
    train = yaml.safe_load((REPO / "params.yaml").read_text())["train"]
    assert int(head["rayStartParams"]["num-cpus"]) >= int(train["num_workers"])
    request = parse_quantity(head["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"])
    assert request < int(head["rayStartParams"]["num-cpus"])


def test_environment_over_budget_is_caught(
    rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    objs = copy.deepcopy(rendered["local"])
    head = find(objs, "RayJob", "guessme-train")["spec"]["rayClusterSpec"]["headGroupSpec"]["template"][
        "spec"
    ]
    head["containers"][0]["resources"]["requests"]["cpu"] = "2"  # as before this change
    workloads = workload_requests(objs, chart_rendered["local"], load_values(REPO), training=True)
    found = budget_problems("local", load_budget("local"), workloads, "training")
    assert len(found) == 2  # both nodes
    assert found[0].startswith("environments/local (training): requests 4.61 cpu > 4.00 of node kind-runner")
    assert "largest: RayJob guessme/guessme-train head 2.00" in found[0]


def test_memory_over_budget_is_caught(
    rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    budget = load_budget("local")
    budget["nodes"] = {"small": {"cpu": "8", "memory": "8Gi"}}
    workloads = workload_requests(
        rendered["local"], chart_rendered["local"], load_values(REPO), training=True
    )
    (found,) = budget_problems("local", budget, workloads, "training")
    assert "memory > 8.00 of node small" in found
    assert "largest: RayJob guessme/guessme-train head 4.00" in found
