"""The pods and NetworkPolicies one environment would have on a cluster, derived from what renders.

Sources, each as it would exist once synced:
- the environment's own objects (Deployments, StatefulSets, NetworkPolicies, Namespaces);
- the pods KubeRay v1.7.0 creates from the RayService and RayJob: each Ray pod carries the template's
  labels plus ray.io/node-type, ray.io/cluster, ray.io/group, ray.io/is-ray-node (the first three not
  overridable: ray-operator/controllers/ray/common/pod.go labelPod); the RayJob's submitter pod
  carries its template's labels (rayjob_controller.go createK8sJobIfNeed);
- the chart-rendered objects of the vendored KubeRay chart (the operator's Deployment);
- the Airflow chart's pods and NetworkPolicies for platform/airflow/values.yaml (airflow_chart.py);
- outside the environment: an ingress-nginx controller (namespace ingress-nginx, the kind/Helm
  install's) and a browser outside the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import airflow_chart
from netpol import Pod

Obj = dict[str, Any]
INGRESS_NAMESPACE = "ingress-nginx"
INGRESS_CONTROLLER = Pod(
    "ingress-nginx-controller",
    INGRESS_NAMESPACE,
    {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
    {"http": 80, "https": 443},
)
BROWSER = Pod("browser", None, ip="203.0.113.7")
# Ports a Ray node listens on (Ray's defaults): GCS, dashboard, client, Serve, metrics, dashboard
# agent, and one port of the worker range (min-worker-port 10002).
RAY_PORTS = {
    "gcs": 6379,
    "dashboard": 8265,
    "client": 10001,
    "serve": 8000,
    "metrics": 8080,
    "dashboard-agent": 52365,
    "worker": 10002,
}
# Where a flow's destination may be any port: Ray nodes of one cluster talk on many.
ANY_PORT = 0


@dataclass(frozen=True)
class Flow:
    """A connection a component needs: every pod of `src` to every pod of `dst` on `port`."""

    src: str
    dst: str
    port: int
    why: str


def _pod_name(obj: Obj, suffix: str = "") -> str:
    return f"{obj['metadata']['name']}{suffix}"


def _ports(pod_spec: Obj) -> dict[str, int]:
    return {
        p.get("name", str(p["containerPort"])): p["containerPort"]
        for c in pod_spec.get("containers", [])
        for p in c.get("ports", [])
    }


def _ray_pods(obj: Obj, cluster_spec: Obj, cluster_name: str) -> list[Pod]:
    ns = obj["metadata"]["namespace"]
    pods = []
    groups = [("head", "headgroup", cluster_spec["headGroupSpec"])] + [
        ("worker", g["groupName"], g) for g in cluster_spec.get("workerGroupSpecs", [])
    ]
    for node_type, group, spec in groups:
        template = spec["template"]
        labels = {"ray.io/is-ray-node": "yes", **(template.get("metadata") or {}).get("labels", {})}
        labels |= {"ray.io/node-type": node_type, "ray.io/cluster": cluster_name, "ray.io/group": group}
        pods.append(
            Pod(f"{cluster_name}-{node_type}-{group}", ns, labels, {**RAY_PORTS, **_ports(template["spec"])})
        )
    return pods


def environment_pods(objs: list[Obj], chart_objs: list[Obj], airflow_values: Obj) -> list[Pod]:
    """Every pod of the environment (and the ingress controller and a browser outside it)."""
    pods: list[Pod] = [INGRESS_CONTROLLER, BROWSER]
    for obj in [*objs, *chart_objs]:
        kind = obj["kind"]
        if kind in ("Deployment", "StatefulSet"):
            template = obj["spec"]["template"]
            labels = (template.get("metadata") or {}).get("labels", {})
            pods.append(Pod(_pod_name(obj), obj["metadata"]["namespace"], labels, _ports(template["spec"])))
        elif kind == "RayService":
            pods += _ray_pods(obj, obj["spec"]["rayClusterConfig"], f"{obj['metadata']['name']}-abcde")
        elif kind == "RayJob":
            pods += _ray_pods(obj, obj["spec"]["rayClusterSpec"], f"{obj['metadata']['name']}-fghij")
            sub = obj["spec"]["submitterPodTemplate"]
            labels = (sub.get("metadata") or {}).get("labels", {})
            pods.append(
                Pod(_pod_name(obj, "-submitter"), obj["metadata"]["namespace"], labels, _ports(sub["spec"]))
            )
    airflow_app = next(o for o in objs if o["kind"] == "Application" and o["metadata"]["name"] == "airflow")
    namespace = airflow_app["spec"]["destination"]["namespace"]
    for component, ports in airflow_chart.components(airflow_values).items():
        pods.append(Pod(f"airflow-{component}", namespace, airflow_chart.pod_labels(component), ports))
    return pods


def namespace_labels(objs: list[Obj]) -> dict[str, dict[str, str]]:
    labels = {
        o["metadata"]["name"]: dict(o["metadata"].get("labels") or {})
        for o in objs
        if o["kind"] == "Namespace"
    }
    labels.setdefault(INGRESS_NAMESPACE, {})
    return labels


# --- the flows Guessme needs: allowed; every other pod-to-pod connection must be denied -----------

AIRFLOW_DB_CLIENTS = [
    "airflow-scheduler",
    "airflow-api-server",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-run-airflow-migrations",
]


def needed_flows(pods: list[Pod]) -> list[Flow]:
    names = {p.name for p in pods}

    def ray(prefix: str, node: str) -> list[str]:
        return sorted(n for n in names if n.startswith(prefix) and f"-{node}-" in n)

    serve_heads, serve_workers = ray("guessme-serve-", "head"), ray("guessme-serve-", "worker")
    train_heads = ray("guessme-train-", "head")
    flows = [
        Flow("browser", "ingress-nginx-controller", 443, "browser -> ingress"),
        Flow("browser", "ingress-nginx-controller", 80, "browser -> ingress"),
        Flow("ingress-nginx-controller", "guessme-frontend", 8080, "ingress -> front end"),
        *[
            Flow("ingress-nginx-controller", h, 8000, "ingress -> Serve (proxy_location: HeadOnly)")
            for h in serve_heads
        ],
        # The front end's nginx proxies the API too (Tilt port-forwards the front end).
        *[Flow("guessme-frontend", h, 8000, "front end's proxy -> Serve") for h in serve_heads],
        *[Flow(s, "mlflow", 5000, "Serve loads the model from MLflow") for s in serve_heads + serve_workers],
        *[Flow(t, "mlflow", 5000, "training logs runs and registers models") for t in train_heads],
        *[
            Flow(f"airflow-{c}", "airflow-api-server", 8080, "Execution API")
            for c in ("scheduler", "triggerer", "dag-processor")
        ],
        *[Flow(c, "postgres", 5432, "Airflow metadata database") for c in AIRFLOW_DB_CLIENTS],
        # LocalExecutor: the pipeline's tasks run in the scheduler pod.
        Flow("airflow-scheduler", "mlflow", 5000, "pipeline: compare, register, promote"),
        *[Flow("airflow-scheduler", h, 8265, "pipeline: Ray job API") for h in serve_heads + train_heads],
        *[Flow("airflow-scheduler", h, 8000, "pipeline verify: /model, probe set") for h in serve_heads],
        Flow("mlflow", "postgres", 5432, "MLflow backend store"),
        # rayservice_controller.go: the dashboard's Serve API; the head proxy's health
        # (updateHeadPodServeLabel).
        *[
            Flow("kuberay-operator", h, p, "KubeRay polls dashboard and Serve")
            for h in serve_heads
            for p in (8265, 8000)
        ],
        *[Flow("kuberay-operator", h, 8265, "KubeRay watches the job") for h in train_heads],
        *[Flow(w, h, ANY_PORT, "Ray worker -> head") for w in serve_workers for h in serve_heads],
        *[Flow(h, w, ANY_PORT, "Ray head -> worker") for w in serve_workers for h in serve_heads],
        *[
            Flow(a, b, ANY_PORT, "Ray workers -> each other (replicas of a group too)")
            for a in serve_workers
            for b in serve_workers
        ],
        *[Flow("guessme-train-submitter", h, 8265, "ray job submit") for h in train_heads],
    ]
    flows.append(Flow("mlflow", "object-store", 9000, "MLflow artifacts (where the store runs)"))
    # Components an environment or the chart values leave out (the object store in prod, a
    # disabled Airflow component) have no flows.
    return [f for f in flows if f.src in names and f.dst in names]
