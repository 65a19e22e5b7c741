"""Network reachability: every NetworkPolicy an environment would have, evaluated on its pods.

The policies: the environment's own (platform/network and beside each component), those its
vendored charts render, and those the Airflow chart renders for platform/airflow/values.yaml
(airflow_chart.py). Each needed flow (cluster_model.needed_flows) must be allowed, and every other
connection between pods of Guessme's namespaces, on every port they listen on, denied.
"""

from __future__ import annotations

import copy

import pytest
import yaml
from airflow_chart import chart_network_policies, load_values
from cluster_model import ANY_PORT, Flow, environment_pods, namespace_labels, needed_flows
from manifest_tools import REPO, Obj, environments, find
from netpol import Network, Pod

pytestmark = pytest.mark.manifests


def network_of(objs: list[Obj], chart_objs: list[Obj], airflow_values: Obj) -> tuple[Network, list[Pod]]:
    airflow_ns = find(objs, "Application", "airflow")["spec"]["destination"]["namespace"]
    policies = [o for o in [*objs, *chart_objs] if o["kind"] == "NetworkPolicy"]
    policies += chart_network_policies(airflow_values, airflow_ns)
    return Network(policies, namespace_labels(objs)), environment_pods(objs, chart_objs, airflow_values)


def reachability_problems(
    network: Network, pods: list[Pod], flows: list[Flow], own_namespaces: set[str]
) -> list[str]:
    """Needed flows that are blocked, then connections into Guessme's namespaces that nothing needs."""
    by_name = {p.name: p for p in pods}
    needed: set[tuple[str, str, int]] = set()
    found: list[str] = []
    for flow in flows:
        src, dst = by_name[flow.src], by_name[flow.dst]
        ports = sorted(set(dst.ports.values())) if flow.port == ANY_PORT else [flow.port]
        for port in ports:
            needed.add((src.name, dst.name, port))
            if not network.allows(src, dst, port):
                found.append(f"needed flow blocked: {src} -> {dst}:{port} ({flow.why})")
    for src in pods:
        for dst in pods:
            if dst.namespace not in own_namespaces or src is dst:
                continue
            for port in sorted(set(dst.ports.values())):
                if (src.name, dst.name, port) not in needed and network.allows(src, dst, port):
                    found.append(f"unneeded flow allowed: {src} -> {dst}:{port}")
    return found


def own_namespaces(objs: list[Obj]) -> set[str]:
    return {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"}


@pytest.mark.parametrize("env", environments())
def test_needed_flows_allowed_and_others_denied(
    env: str, rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    network, pods = network_of(rendered[env], chart_rendered[env], load_values(REPO))
    flows = needed_flows(pods)
    # The model holds every component the issue names (a pod missing from it would pass vacuously).
    names = {p.name for p in pods}
    assert {
        "guessme-frontend",
        "mlflow",
        "postgres",
        "kuberay-operator",
        "airflow-api-server",
        "airflow-scheduler",
    } <= names
    assert any(n.startswith("guessme-serve-") and "-worker-" in n for n in names)
    assert any(n.startswith("guessme-train-") and "-head-" in n for n in names)
    overlay = yaml.safe_load((REPO / "environments" / env / "kustomization.yaml").read_text())
    components = overlay["components"]
    assert ("object-store" in names) == ("../../platform/object-store" in components)
    problems = reachability_problems(network, pods, flows, own_namespaces(rendered[env]))
    assert not problems, "\n".join(problems)


# --- each kind of failure, on a broken copy -------------------------------------------------------


def broken_network(objs: list[Obj], chart_objs: list[Obj], values: Obj) -> list[str]:
    network, pods = network_of(objs, chart_objs, values)
    return reachability_problems(network, pods, needed_flows(pods), own_namespaces(objs))


def test_policy_blocking_a_needed_flow_is_caught(
    rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    objs = copy.deepcopy(rendered["local"])
    mlflow = find(objs, "NetworkPolicy", "mlflow")
    mlflow["spec"]["ingress"][0]["ports"] = [{"port": 5001}]
    found = broken_network(objs, chart_rendered["local"], load_values(REPO))
    assert (
        "needed flow blocked: guessme-platform/airflow-scheduler -> guessme-platform/mlflow:5000 "
        "(pipeline: compare, register, promote)"
    ) in found


def test_airflow_policy_without_execution_api_rule_is_caught(
    rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    values = load_values(REPO)
    del values["apiServer"]["networkPolicy"]
    found = broken_network(rendered["local"], chart_rendered["local"], values)
    assert any(
        p.startswith(
            "needed flow blocked: guessme-platform/airflow-scheduler -> "
            "guessme-platform/airflow-api-server:8080"
        )
        for p in found
    )


def test_too_wide_policy_is_caught(
    rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    objs = copy.deepcopy(rendered["local"])
    # The old ray-within-namespace rule: every pod of the namespace reaches Ray pods on every port.
    find(objs, "NetworkPolicy", "serve-ray-nodes")["spec"]["ingress"] = [{"from": [{"podSelector": {}}]}]
    found = broken_network(objs, chart_rendered["local"], load_values(REPO))
    assert any(
        p.startswith(
            "unneeded flow allowed: guessme/guessme-frontend -> "
            "guessme/guessme-serve-abcde-head-headgroup:6379"
        )
        for p in found
    )


def test_missing_default_deny_is_caught(
    rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    objs = [
        o
        for o in rendered["local"]
        if not (
            o["kind"] == "NetworkPolicy"
            and o["metadata"]["name"] == "default-deny-ingress"
            and o["metadata"]["namespace"] == "kuberay-system"
        )
    ]
    found = broken_network(objs, chart_rendered["local"], load_values(REPO))
    assert any("-> kuberay-system/kuberay-operator:8080" in p for p in found)


def test_todays_policies_fail(rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]) -> None:
    """The policies before this change: Execution API blocked, and the game open to every namespace."""
    old = list(yaml.safe_load_all(OLD_POLICIES))
    values = load_values(REPO)
    del values["apiServer"]["networkPolicy"]
    local = [
        o
        for o in rendered["local"]
        if not (o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == "guessme")
    ]
    found = broken_network([*local, *old], chart_rendered["local"], values)
    assert any(p.startswith("needed flow blocked") for p in found)
    assert any(
        p.startswith("unneeded flow allowed: guessme-platform/mlflow -> guessme/guessme-frontend:8080")
        for p in found
    )


OLD_POLICIES = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: game-from-ingress, namespace: guessme}
spec:
  podSelector:
    matchExpressions:
      - {key: app.kubernetes.io/name, operator: In, values: [guessme-frontend, guessme-serve]}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {}}]
      ports: [{port: 8080}, {port: 8000}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: guessme}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
