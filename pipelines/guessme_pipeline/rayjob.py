"""Training on Kubernetes: one RayJob per DAG run, made from the repository's training manifest.

The template is the RayJob `guessme-train` that the environment's overlay deploys suspended
(apps/guessme-train/k8s/rayjob.yaml as Argo CD or Tilt applied it, with the environment's image). Each
run creates a copy under its own name, unsuspended, tagged so that the MLflow run it registers can be
found again (MLflow adds the JSON of MLFLOW_RUN_CONTEXT to every run's tags), then waits until KubeRay
reports the job finished. A job that fails, or does not finish in time, fails the task, so nothing
downstream (registration lookup, gate, promotion) runs.

The Kubernetes calls go through the cncf-kubernetes provider's KubernetesHook (in-cluster credentials in
the Airflow pods, the `kubernetes_default` connection elsewhere).
"""

import copy
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
TEMPLATE = "guessme-train"
RUN_TAG = "guessme.pipeline_run"  # the MLflow run tag naming the DAG run that trained it
# Where the copy must not inherit the template's bookkeeping: Argo CD would take a copy that carries its
# tracking annotation (or the legacy instance label) for one of its own resources and prune it.
# The template's own mark (Argo CD's RayJob health check reports a suspended template Healthy) is no
# copy's: a run suspended later must show as Suspended.
TEMPLATE_ANNOTATION = "guessme.dev/template"
_DROPPED_ANNOTATIONS = (
    "argocd.argoproj.io/tracking-id",
    "kubectl.kubernetes.io/last-applied-configuration",
    TEMPLATE_ANNOTATION,
)
_DROPPED_LABELS = ("app.kubernetes.io/instance",)
# KubeRay v1.7.0 ray-operator/apis/ray/v1/rayjob_types.go: IsJobDeploymentTerminal is true for the
# deployment statuses Complete and Failed; the entrypoint succeeded only when jobStatus is SUCCEEDED.
_ENDED = {"Complete", "Failed"}


class RayJobFailed(RuntimeError):
    """The training RayJob failed or timed out; the message carries KubeRay's reason and message."""


class CustomObjects(Protocol):
    """The KubernetesHook methods used here (so a test can also hand in a recording double)."""

    def get_custom_object(
        self, group: str, version: str, plural: str, name: str, namespace: str | None = None
    ) -> Any: ...

    def create_custom_object(
        self, group: str, version: str, plural: str, body: str | dict[Any, Any], namespace: str | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class TrainingSettings:
    namespace: str = "guessme"
    poll_seconds: float = 10.0
    timeout_seconds: float = 3600.0  # the template's activeDeadlineSeconds stops the job itself too


def job_name(run_id: str) -> str:
    """A DNS-1123 name, stable for one DAG run (a retried task finds its own job again), short enough
    for the names KubeRay derives from it (RayCluster, head pod, submitter Job)."""
    return f"{TEMPLATE}-{hashlib.sha256(run_id.encode()).hexdigest()[:10]}"


def label_value(text: str) -> str:
    """`text` as a valid label value (63 characters of [A-Za-z0-9_.-], alphanumeric at both ends)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:63].strip("_.-") or "run"


def job_for_run(template: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The template RayJob, renamed for this run, unsuspended, its MLflow runs tagged with the run id."""
    meta = template.get("metadata", {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in _DROPPED_LABELS}
    labels["guessme.dev/pipeline-run"] = label_value(run_id)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _DROPPED_ANNOTATIONS}
    annotations["guessme.dev/pipeline-run"] = run_id
    spec = copy.deepcopy(template["spec"])
    spec["suspend"] = False
    context = json.dumps({RUN_TAG: run_id})
    for container in spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]:
        env = [e for e in container.get("env", []) if e.get("name") != "MLFLOW_RUN_CONTEXT"]
        container["env"] = [*env, {"name": "MLFLOW_RUN_CONTEXT", "value": context}]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RayJob",
        "metadata": {
            "name": job_name(run_id),
            "namespace": meta.get("namespace"),
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def _is_conflict(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 409


def status_line(job: dict[str, Any]) -> str:
    status = job.get("status") or {}
    parts = [f"{k}={status[k]}" for k in ("jobDeploymentStatus", "jobStatus", "reason") if status.get(k)]
    return ", ".join(parts) or "no status yet"


def train(
    k8s: CustomObjects,
    run_id: str,
    settings: TrainingSettings,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Create this run's RayJob (or find it, when the task is retried) and wait until it has ended."""
    ns = settings.namespace
    try:
        template = k8s.get_custom_object(GROUP, VERSION, PLURAL, TEMPLATE, ns)
    except Exception as exc:
        if getattr(exc, "status", None) == 404:
            raise RayJobFailed(
                f"no RayJob {ns}/{TEMPLATE} to train from: the environment's overlay deploys it "
                "(apps/guessme-train/k8s); has Argo CD or Tilt synced it?"
            ) from exc
        raise
    body = job_for_run(template, run_id)
    name = body["metadata"]["name"]
    body["metadata"]["namespace"] = ns
    try:
        k8s.create_custom_object(GROUP, VERSION, PLURAL, body, ns)
        log(f"train: created RayJob {ns}/{name} from {TEMPLATE}")
    except Exception as exc:
        if not _is_conflict(exc):
            raise
        log(f"train: RayJob {ns}/{name} exists (a retried task): following it")
    deadline = clock() + settings.timeout_seconds
    last = ""
    while True:
        job = k8s.get_custom_object(GROUP, VERSION, PLURAL, name, ns)
        line = status_line(job)
        if line != last:
            log(f"train: RayJob {name}: {line}")
            last = line
        status = job.get("status") or {}
        if status.get("jobDeploymentStatus") in _ENDED:
            if status.get("jobStatus") == "SUCCEEDED" and status["jobDeploymentStatus"] == "Complete":
                return {"rayjob": name, "namespace": ns, "run_tag": run_id, "job_id": status.get("jobId")}
            raise RayJobFailed(f"RayJob {ns}/{name} failed: {line}: {status.get('message', '')}".rstrip(": "))
        if clock() > deadline:
            raise RayJobFailed(
                f"RayJob {ns}/{name} did not finish within {settings.timeout_seconds:.0f} s ({line})"
            )
        sleep(settings.poll_seconds)
