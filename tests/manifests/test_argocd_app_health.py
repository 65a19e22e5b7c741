"""The health Argo CD would give each environment's Application once KubeRay has reconciled it.

Argo CD gives an Application the health of its worst resource: controller/health.go
setApplicationHealth (v3.5.1) folds every live resource's health with gitops-engine's
pkg/health/health.go IsWorse, whose healthOrder is Healthy < Suspended < Progressing < Missing <
Degraded < Unknown. So one KubeRay object reported Suspended (the training template, deployed suspended
on purpose) would keep guessme-<env> from ever being Healthy, while tests/cluster and the kind workflow
wait for every Application Synced and Healthy.

Here each environment is rendered (kubectl kustomize), its KubeRay objects are given the status KubeRay
v1.7.0 settles them in (checked against the vendored CRDs), and the Lua health checks of
platform/argocd/health run on them as Argo CD runs them. Objects of other kinds get Argo CD's built-in
checks, which are not modelled here: they count as Healthy once rolled out.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import yaml
from manifest_tools import Obj, environments
from test_argocd_health import HEALTH, run_health_lua

pytestmark = pytest.mark.manifests

# gitops-engine pkg/health/health.go (v3.5.1, in argo-cd's gitops-engine/ folder): most to least healthy.
HEALTH_ORDER = ["Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"]
SETTLED_AT = "2026-11-30T12:00:00Z"


def app_health(healths: list[str]) -> str:
    """setApplicationHealth's fold: start Healthy, keep the worse of the two at each resource."""
    app = "Healthy"
    for health in healths:
        if HEALTH_ORDER.index(health) > HEALTH_ORDER.index(app):
            app = health
    return app


def settled_rayjob_status(job: Obj) -> Obj:
    """KubeRay v1.7.0 ray-operator/controllers/ray/rayjob_controller.go: a RayJob created suspended
    goes New -> Initializing (initRayJobStatusIfNeed sets startTime) -> Suspending
    (updateStatusToSuspendingIfNeeded) -> Suspended, with its job and cluster fields reset; one created
    to run ends Complete with jobStatus SUCCEEDED when its entrypoint succeeds."""
    if job["spec"].get("suspend"):
        return {"jobDeploymentStatus": "Suspended", "startTime": SETTLED_AT, "observedGeneration": 1}
    return {
        "jobDeploymentStatus": "Complete",
        "jobStatus": "SUCCEEDED",
        "startTime": SETTLED_AT,
        "endTime": SETTLED_AT,
        "observedGeneration": 1,
    }


def settled_rayservice_status(service: Obj) -> Obj:
    """A RayService serving every application of its serveConfigV2 (rayservice_controller.go: Ready=True
    with NonZeroServeEndpoints once the head's proxy is ready; each application RUNNING)."""
    apps = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    condition = {"lastTransitionTime": SETTLED_AT, "observedGeneration": 1}
    return {
        "activeServiceStatus": {
            "applicationStatuses": {a["name"]: {"status": "RUNNING"} for a in apps},
            "rayClusterName": f"{service['metadata']['name']}-x7k2p",
        },
        "conditions": [
            {
                **condition,
                "type": "Ready",
                "status": "True",
                "reason": "NonZeroServeEndpoints",
                "message": "Number of serve endpoints is greater than 0",
            },
            {
                **condition,
                "type": "UpgradeInProgress",
                "status": "False",
                "reason": "NoPendingCluster",
                "message": "Active Ray cluster exists and no pending Ray cluster",
            },
        ],
        "numServeEndpoints": 1,
        "observedGeneration": 1,
        "serviceStatus": "Running",
    }


SETTLED = {"RayJob": settled_rayjob_status, "RayService": settled_rayservice_status}


def settled(obj: Obj, schemas: dict[tuple[str, str], Obj]) -> Obj:
    live = copy.deepcopy(obj)
    live["status"] = SETTLED[obj["kind"]](obj)
    status_schema = schemas[(obj["apiVersion"], obj["kind"])]["properties"]["status"]
    jsonschema.validate(live["status"], status_schema)  # only fields (and values) KubeRay writes
    return live


def resource_healths(objs: list[Obj], schemas: dict[tuple[str, str], Obj]) -> dict[str, dict[str, Any]]:
    """kind/name -> the health the Lua check gives each KubeRay object, settled."""
    out = {}
    for obj in objs:
        group = obj["apiVersion"].split("/")[0]
        if group != "ray.io":
            continue
        script = HEALTH / group / obj["kind"] / "health.lua"
        assert script.is_file(), f"no Argo CD health check for {group}/{obj['kind']}"
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        out[name] = run_health_lua(script.read_text(), settled(obj, schemas))
    return out


@pytest.mark.parametrize("env", environments())
def test_the_environments_application_is_healthy_once_kuberay_settles(
    env: str, rendered: dict[str, list[Obj]], schemas: dict[tuple[str, str], Obj]
) -> None:
    healths = resource_healths(rendered[env], schemas)
    assert {"RayJob/guessme-train", "RayService/guessme-serve"} <= set(healths), healths
    unhealthy = {name: h for name, h in healths.items() if h["status"] != "Healthy"}
    assert app_health([h["status"] for h in healths.values()]) == "Healthy", (
        f"guessme-{env} would be {app_health([h['status'] for h in healths.values()])}: {unhealthy}"
    )


def test_a_suspended_rayjob_not_declared_a_template_keeps_the_app_suspended(
    rendered: dict[str, list[Obj]], schemas: dict[tuple[str, str], Obj]
) -> None:
    """Suspended by hand (or a template whose annotation was lost): Argo CD must still say so."""
    objs = copy.deepcopy(rendered["local"])
    (job,) = [o for o in objs if o["kind"] == "RayJob"]
    del job["metadata"]["annotations"]["guessme.dev/template"]
    healths = resource_healths(objs, schemas)
    assert healths["RayJob/guessme-train"]["status"] == "Suspended"
    assert app_health([h["status"] for h in healths.values()]) == "Suspended"


def test_the_fold_follows_gitops_engines_order() -> None:
    assert app_health([]) == "Healthy"
    assert app_health(["Healthy", "Suspended", "Healthy"]) == "Suspended"
    assert app_health(["Suspended", "Progressing"]) == "Progressing"
    assert app_health(["Degraded", "Missing", "Progressing"]) == "Degraded"
