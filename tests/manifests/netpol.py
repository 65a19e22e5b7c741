"""A small evaluator of Kubernetes NetworkPolicy (networking.k8s.io/v1) semantics, for offline proofs.

The rules it encodes are those of the API reference and the concept page
(https://kubernetes.io/docs/concepts/services-networking/network-policies/):
- a pod is isolated for ingress (egress) when at least one policy in ITS namespace selects it and
  lists Ingress (Egress) in policyTypes (policyTypes defaults to [Ingress], plus Egress when the
  policy has egress rules);
- a connection is allowed when the destination side allows it (not isolated, or some selecting
  policy has a rule admitting the source and port) AND the source side allows it likewise;
- a rule with no `from`/`to` admits every peer, with no `ports` every port; an empty rule list
  admits nothing; policies are additive (a union, never a deny);
- a peer with only podSelector means pods of the policy's own namespace; only namespaceSelector,
  every pod of the matching namespaces; both, pods matching both; ipBlock, addresses outside the
  cluster (cluster pods are matched by selectors, as CNI plugins do for pod traffic);
- a named port matches the destination container port of that name; endPort makes a range.

No maintained Python library evaluates NetworkPolicies offline (the Go `sigs.k8s.io/network-policy-api`
tooling needs a cluster), so this module stays small and has its own tests (test_netpol_evaluator.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    """A pod as NetworkPolicy sees it. namespace None: outside the cluster (ip names its address)."""

    name: str
    namespace: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # container port name -> number
    ip: str = "10.244.0.10"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector: matchLabels AND every matchExpression; {} matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {op!r}")
    return True


def policy_types(policy: Obj) -> set[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


class Network:
    """Every NetworkPolicy of a cluster, and the labels of its namespaces."""

    def __init__(self, policies: Iterable[Obj], namespace_labels: Mapping[str, Mapping[str, str]]) -> None:
        self.policies = [p for p in policies if p.get("kind") == "NetworkPolicy"]
        for p in self.policies:
            if not p["metadata"].get("namespace"):
                raise ValueError(f"NetworkPolicy {p['metadata']['name']} has no namespace")
        self.namespace_labels = namespace_labels

    def _ns_labels(self, namespace: str) -> dict[str, str]:
        # The API server labels every namespace with its own name (Kubernetes >= 1.22).
        return {**(self.namespace_labels.get(namespace) or {}), "kubernetes.io/metadata.name": namespace}

    def _selecting(self, pod: Pod, direction: str) -> list[Obj]:
        return [
            p
            for p in self.policies
            if pod.namespace is not None
            and p["metadata"]["namespace"] == pod.namespace
            and direction in policy_types(p)
            and selector_matches(p["spec"].get("podSelector"), pod.labels)
        ]

    def _peer_matches(self, peer: Obj, policy_ns: str, other: Pod) -> bool:
        if "ipBlock" in peer:
            if other.namespace is not None:
                return False
            addr = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            if addr not in ipaddress.ip_network(block["cidr"], strict=False):
                return False
            return not any(addr in ipaddress.ip_network(c, strict=False) for c in block.get("except") or [])
        if other.namespace is None:
            return False
        if "namespaceSelector" in peer:
            if not selector_matches(peer["namespaceSelector"], self._ns_labels(other.namespace)):
                return False
        elif other.namespace != policy_ns:
            return False
        return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)

    @staticmethod
    def _port_matches(rule_ports: list[Obj] | None, dst: Pod, port: int, protocol: str) -> bool:
        if not rule_ports:
            return True
        for rp in rule_ports:
            if rp.get("protocol", "TCP") != protocol:
                continue
            if "port" not in rp:
                return True
            want = rp["port"]
            if isinstance(want, str) and not want.isdigit():
                if dst.ports.get(want) == port:
                    return True
                continue
            low = int(want)
            if low <= port <= int(rp.get("endPort", low)):
                return True
        return False

    def _side_allows(self, pod: Pod, other: Pod, dst: Pod, port: int, protocol: str, direction: str) -> bool:
        selecting = self._selecting(pod, direction)
        if not selecting:
            return True
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if peers and not any(
                    self._peer_matches(p, policy["metadata"]["namespace"], other) for p in peers
                ):
                    continue
                if self._port_matches(rule.get("ports"), dst, port, protocol):
                    return True
        return False

    def allows(self, src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
        """Whether a new connection from src to dst:port is allowed by both sides' policies."""
        return self._side_allows(dst, src, dst, port, protocol, "Ingress") and self._side_allows(
            src, dst, dst, port, protocol, "Egress"
        )
