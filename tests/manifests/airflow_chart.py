"""The behaviour of the apache-airflow Helm chart 1.22.0 that the platform relies on, encoded as rules.

The chart's source cannot be vendored here (apache/airflow is too large to fetch), so each rule below
cites the chart file it encodes (paths under apache/airflow `chart/`, read at the helm-chart/1.22.0
era; Argo CD renders the chart from https://airflow.apache.org at the version
platform/airflow/application.yaml pins). `values_problems` names every values key and rule broken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
RELEASE = "airflow"
KNOWN_KEYS_FILE = Path(__file__).resolve().parent / "charts" / "airflow-1.22.0-values-keys.yaml"
VALUES_FILE = "platform/airflow/values.yaml"

# chart/values.yaml defaults the rules below depend on.
DEFAULT_PORTS = {"apiServer": 8080, "workerLogs": 8793, "triggererLogs": 8794}
DEFAULT_UID, DEFAULT_GID = 50000, 0
# The pods the chart runs for LocalExecutor with the api-server, dag-processor and triggerer enabled
# (redis, statsd, pgbouncer, flower and the bundled postgresql off): component label -> named ports.
# chart/templates/*/…-deployment.yaml label each pod tier: airflow, component: <c>, release: <release>;
# chart/templates/jobs/migrate-database-job.yaml labels its pod component: run-airflow-migrations.
COMPONENT_PORTS: dict[str, dict[str, int]] = {
    "scheduler": {"worker-logs": DEFAULT_PORTS["workerLogs"]},
    "api-server": {"api-server": DEFAULT_PORTS["apiServer"]},
    "dag-processor": {},
    "triggerer": {"triggerer-logs": DEFAULT_PORTS["triggererLogs"]},
    "run-airflow-migrations": {},
}


def components(values: Obj) -> dict[str, dict[str, int]]:
    """The chart's pods for these values: the DAG processor and triggerer unless disabled."""
    enabled = {"dag-processor": "dagProcessor", "triggerer": "triggerer"}
    return {
        c: ports
        for c, ports in COMPONENT_PORTS.items()
        if c not in enabled or (values.get(enabled[c]) or {}).get("enabled", True) is not False
    }


def load_values(root: Path) -> Obj:
    return dict(yaml.safe_load((root / VALUES_FILE).read_text()) or {})


def pod_labels(component: str) -> dict[str, str]:
    return {"tier": "airflow", "component": component, "release": RELEASE}


def chart_network_policies(values: Obj, namespace: str) -> list[Obj]:
    """The NetworkPolicies the chart renders for these values (none unless networkPolicies.enabled)."""
    if not (values.get("networkPolicies") or {}).get("enabled"):
        return []

    def policy(name: str, component: str, ingress: list[Obj] | None) -> Obj:
        spec: Obj = {"podSelector": {"matchLabels": pod_labels(component)}, "policyTypes": ["Ingress"]}
        if ingress is not None:
            spec["ingress"] = ingress
        return {
            "kind": "NetworkPolicy",
            "metadata": {"name": f"{RELEASE}-{name}", "namespace": namespace},
            "spec": spec,
        }

    api = (values.get("apiServer") or {}).get("networkPolicy", {}).get("ingress", {})
    # chart/templates/api-server/api-server-networkpolicy.yaml (airflowVersion >= 3.0.0): the policy
    # always selects the API server; its one ingress rule exists only `if apiServer.networkPolicy.
    # ingress.from` is non-empty (default []), with the ports of `…ingress.ports` (default: the
    # API server port, chart/values.yaml).
    api_ports = api.get("ports") or [{"port": DEFAULT_PORTS["apiServer"]}]
    api_rules = [{"from": api["from"], "ports": api_ports}] if api.get("from") else None
    webserver = {"podSelector": {"matchLabels": pod_labels("webserver")}}
    return [
        policy("api-server-policy", "api-server", api_rules),
        # chart/templates/scheduler/scheduler-networkpolicy.yaml: with LocalExecutor, the log server
        # port is open to pods labelled component: webserver (an Airflow 2 name).
        policy(
            "scheduler-policy",
            "scheduler",
            [{"from": [webserver], "ports": [{"protocol": "TCP", "port": DEFAULT_PORTS["workerLogs"]}]}]
            if values.get("executor") == "LocalExecutor"
            else None,
        ),
        # chart/templates/triggerer/triggerer-networkpolicy.yaml: the triggerer's log port, likewise.
        policy(
            "triggerer-policy",
            "triggerer",
            [{"from": [webserver], "ports": [{"protocol": "TCP", "port": DEFAULT_PORTS["triggererLogs"]}]}],
        ),
    ]


# --- rules on the values file --------------------------------------------------------------------


def unknown_keys(values: Any, known: Any, prefix: str = "") -> list[str]:
    """Keys of `values` that the known-key tree does not list (a None leaf accepts any subtree)."""
    if known is None or not isinstance(values, dict):
        return []
    found: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in known:
            found.append(path)
        else:
            found += unknown_keys(value, known[key], f"{path}.")
    return found


def known_keys() -> Obj:
    return dict(yaml.safe_load(KNOWN_KEYS_FILE.read_text()))


def unknown_values_keys(values: Obj, _revision: str = "") -> list[str]:
    """chart/values.schema.json: keys the chart does not define (Helm ignores them silently)."""
    return [
        f"{VALUES_FILE}: {key}: not a key of the apache-airflow 1.22.0 chart (chart/values.schema.json; "
        f"{KNOWN_KEYS_FILE.name} lists the keys this repository may set)"
        for key in unknown_keys(values, known_keys())
    ]


def api_server_network_policy_ingress_from(values: Obj, _revision: str = "") -> list[str]:
    """chart/templates/api-server/api-server-networkpolicy.yaml: no ingress rule while `from` is empty."""
    api_from = (((values.get("apiServer") or {}).get("networkPolicy") or {}).get("ingress") or {}).get("from")
    if (values.get("networkPolicies") or {}).get("enabled") and not api_from:
        return [
            f"{VALUES_FILE}: apiServer.networkPolicy.ingress.from: empty while networkPolicies.enabled; "
            "chart/templates/api-server/api-server-networkpolicy.yaml then renders no ingress rule and "
            "no task reaches the Execution API"
        ]
    return []


def migrate_database_job_use_helm_hooks(values: Obj, _revision: str = "") -> list[str]:
    """chart/templates/jobs/migrate-database-job.yaml: a Helm post-install hook unless useHelmHooks is
    false; Argo CD maps it to PostSync. The chart's Argo CD setting: no Helm hooks, a Sync hook."""
    job = values.get("migrateDatabaseJob") or {}
    found = []
    if job.get("useHelmHooks", True) is not False:
        found.append(
            f"{VALUES_FILE}: migrateDatabaseJob.useHelmHooks: not false; the Job is then a Helm post-install "
            "hook (chart/templates/jobs/migrate-database-job.yaml), which Argo CD runs as PostSync, "
            "after the pods that wait for it are Healthy: the first sync never ends"
        )
    if (job.get("jobAnnotations") or {}).get("argocd.argoproj.io/hook") not in ("Sync", "PreSync"):
        found.append(
            f"{VALUES_FILE}: migrateDatabaseJob.jobAnnotations: no argocd.argoproj.io/hook Sync (or PreSync) "
            "annotation; without Helm hooks the Job must still be re-run by each sync (the chart's "
            "Argo CD documentation)"
        )
    return found


def airflow_pod_security_context_not_accumulated(values: Obj, _revision: str = "") -> list[str]:
    """chart/templates/_helpers.yaml "airflowPodSecurityContext": securityContexts.pod replaces the
    default `runAsUser: uid, fsGroup: gid` whole ("Values are not accumulated")."""
    pod = (values.get("securityContexts") or {}).get("pod") or values.get("securityContext")
    if not pod:
        return []
    return [
        f"{VALUES_FILE}: securityContexts.pod.{key}: missing; the chart drops its default ({key}: {default}) "
        "when securityContexts.pod is set (_helpers.yaml airflowPodSecurityContext)"
        for key, default in (("runAsUser", DEFAULT_UID), ("fsGroup", DEFAULT_GID))
        if key not in pod
    ]


def git_sync_ref(values: Obj, tracked_revision: str) -> list[str]:
    """chart/templates/_helpers.yaml "git_sync_container": git-sync v4 reads GITSYNC_REF from
    dags.gitSync.ref; `branch`/`rev` feed only the legacy v3 variables."""
    sync = (values.get("dags") or {}).get("gitSync") or {}
    if sync.get("enabled") and sync.get("ref") != tracked_revision:
        return [
            f"{VALUES_FILE}: dags.gitSync.ref: {sync.get('ref')!r}, not {tracked_revision!r} (the revision "
            "Argo CD tracks); git-sync v4 reads GITSYNC_REF from `ref` only, `branch`/`rev` feed legacy "
            "variables (_helpers.yaml git_sync_container)"
        ]
    return []


RULES = (
    unknown_values_keys,
    api_server_network_policy_ingress_from,
    migrate_database_job_use_helm_hooks,
    airflow_pod_security_context_not_accumulated,
    git_sync_ref,
)


def values_problems(values: Obj, tracked_revision: str) -> list[str]:
    """Every way these values break the chart behaviour the platform needs, naming key and rule."""
    return [problem for rule in RULES for problem in rule(values, tracked_revision)]
