"""The NetworkPolicy evaluator against the rules of the Kubernetes docs, one behaviour per test."""

from __future__ import annotations

import pytest
from netpol import Network, Pod, selector_matches

pytestmark = pytest.mark.manifests

WEB = Pod("web", "app", {"role": "web"}, {"http": 8080})
DB = Pod("db", "app", {"role": "db"}, {"pg": 5432})
OTHER_NS = Pod("client", "other", {"role": "web"})
OUTSIDE = Pod("browser", None, ip="203.0.113.7")


def policy(name: str, ns: str, spec: dict) -> dict:
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def deny_all(ns: str) -> dict:
    return policy("deny", ns, {"podSelector": {}, "policyTypes": ["Ingress"]})


def test_no_policy_allows_everything() -> None:
    net = Network([], {})
    assert net.allows(WEB, DB, 5432)
    assert net.allows(OUTSIDE, DB, 1)


def test_default_deny_isolates_only_its_namespace() -> None:
    net = Network([deny_all("app")], {})
    assert not net.allows(WEB, DB, 5432)
    assert net.allows(DB, OTHER_NS, 80)  # `other` has no policy


def test_policies_are_a_union() -> None:
    allow = policy(
        "db-from-web",
        "app",
        {
            "podSelector": {"matchLabels": {"role": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "web"}}}]}],
        },
    )
    net = Network([deny_all("app"), allow], {})
    assert net.allows(WEB, DB, 5432)
    assert not net.allows(DB, WEB, 8080)


def test_pod_selector_alone_means_the_policys_namespace() -> None:
    allow = policy(
        "db",
        "app",
        {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "web"}}}]}]},
    )
    net = Network([allow], {})
    assert net.allows(WEB, DB, 5432)
    assert not net.allows(OTHER_NS, DB, 5432)  # same labels, other namespace


def test_namespace_and_pod_selector_in_one_peer_are_anded() -> None:
    peer = {
        "namespaceSelector": {"matchLabels": {"team": "x"}},
        "podSelector": {"matchLabels": {"role": "web"}},
    }
    net = Network(
        [policy("db", "app", {"podSelector": {}, "ingress": [{"from": [peer]}]})], {"other": {"team": "x"}}
    )
    assert net.allows(OTHER_NS, DB, 5432)
    assert not net.allows(Pod("batch", "other", {"role": "batch"}), DB, 5432)
    assert not net.allows(WEB, DB, 5432)  # `app` lacks team=x


def test_namespace_name_label_is_implicit() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}}
    net = Network([policy("db", "app", {"podSelector": {}, "ingress": [{"from": [peer]}]})], {})
    assert net.allows(OTHER_NS, DB, 5432)
    assert not net.allows(WEB, DB, 5432)


def test_empty_ingress_rule_list_admits_nothing_and_empty_rule_admits_all() -> None:
    none = policy("none", "app", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []})
    assert not Network([none], {}).allows(OTHER_NS, DB, 5432)
    everything = policy("all", "app", {"podSelector": {}, "ingress": [{}]})
    assert Network([none, everything], {}).allows(OUTSIDE, DB, 5432)


def test_ports_numbers_names_ranges_and_protocols() -> None:
    ports = [{"port": "http"}, {"port": 9000, "endPort": 9002}, {"port": 53, "protocol": "UDP"}]
    net = Network([policy("web", "app", {"podSelector": {}, "ingress": [{"ports": ports}]})], {})
    assert net.allows(DB, WEB, 8080)  # named port of the destination
    assert net.allows(DB, WEB, 9001)
    assert not net.allows(DB, WEB, 9003)
    assert net.allows(DB, WEB, 53, "UDP")
    assert not net.allows(DB, WEB, 53, "TCP")
    assert not net.allows(WEB, DB, 8080)  # db has no port named http


def test_ip_block_matches_only_outside_addresses() -> None:
    peer = {"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25"]}}
    net = Network([policy("web", "app", {"podSelector": {}, "ingress": [{"from": [peer]}]})], {})
    assert net.allows(OUTSIDE, WEB, 8080)
    assert not net.allows(Pod("b2", None, ip="203.0.113.200"), WEB, 8080)
    assert not net.allows(DB, WEB, 8080)


def test_egress_isolation_on_the_source_side() -> None:
    egress = policy(
        "out",
        "app",
        {
            "podSelector": {"matchLabels": {"role": "web"}},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": 5432}]}],
        },
    )
    net = Network([egress], {})
    assert net.allows(WEB, DB, 5432)
    assert not net.allows(WEB, OTHER_NS, 80)
    assert net.allows(DB, WEB, 8080)  # ingress to web is not isolated


@pytest.mark.parametrize(
    ("expr", "labels", "expected"),
    [
        ({"key": "a", "operator": "In", "values": ["1"]}, {"a": "1"}, True),
        ({"key": "a", "operator": "NotIn", "values": ["1"]}, {"a": "1"}, False),
        ({"key": "a", "operator": "NotIn", "values": ["1"]}, {}, True),
        ({"key": "a", "operator": "Exists"}, {}, False),
        ({"key": "a", "operator": "DoesNotExist"}, {}, True),
    ],
)
def test_match_expressions(expr: dict, labels: dict, expected: bool) -> None:
    assert selector_matches({"matchExpressions": [expr]}, labels) is expected
