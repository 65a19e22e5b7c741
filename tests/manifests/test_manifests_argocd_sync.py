"""Argo CD admits and can sync every Application: the rules of Argo CD v3.5.1, encoded.

Read at tag v3.5.1 of argoproj/argo-cd (gitops-engine lives in that repository since v3):
- pkg/apis/application/v1alpha1/app_project_types.go, IsDestinationPermitted/isDestinationMatched:
  an Application is refused (InvalidSpecError) unless some project destination glob-matches BOTH
  its server and its namespace (globMatch: "*" matches anything, a name only itself); an unset
  namespace is "" and matches only "*".
- gitops-engine/pkg/sync/sync_context.go, shouldSkipDryRunOnMissingResource: a custom resource
  whose CRD the cluster does not know fails the whole sync at dry-run unless its CRD is part of THE
  SAME sync (hasCRDOfGroupKind), the resource carries `argocd.argoproj.io/sync-options:
  SkipDryRunOnMissingResource=true`, or the Application sets that sync option. A CRD installed by a
  child Application is not in the parent's sync, and the parent does not wait for the child
  (docs/operator-manual/upgrading/1.7-1.8.md: Application health assessment removed).
- docs/user-guide/auto_sync.md: automatic sync will not reattempt a sync that failed against the
  same commit; syncPolicy.retry does. A resource applied before its CRD exists needs it.
"""

from __future__ import annotations

import copy
import fnmatch
from pathlib import Path

import pytest
from appset_model import generated_applications
from charts import crd_kinds
from manifest_tools import REPO, Obj, describe, environments, find
from test_manifests_argocd import bootstrap, generated, server_of
from test_manifests_argocd import destination_problems as object_admission_problems

pytestmark = pytest.mark.manifests

SKIP_DRY_RUN = "SkipDryRunOnMissingResource=true"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
# CRDs that exist before any Application syncs: Argo CD's own (installed with Argo CD, docs/deploy.md).
PREINSTALLED_GROUPS = {"argoproj.io"}


def glob_match(pattern: str, value: str) -> bool:
    # Argo CD's glob.Match: `*` matches any string, the empty one included; "" matches only "".
    return fnmatch.fnmatchcase(value, pattern)


def is_destination_permitted(project: Obj, server: str, namespace: str) -> bool:
    return any(
        glob_match(d.get("server", ""), server) and glob_match(d.get("namespace", ""), namespace)
        for d in project["spec"]["destinations"]
    )


def destination_problems(project: Obj, apps: list[Obj], server: str) -> list[str]:
    """Applications the project refuses. A generated Application's server is the labelled cluster's."""
    found = []
    for app in apps:
        dest = app["spec"]["destination"]
        target = server if "{{" in dest.get("server", "") else dest.get("server", "")
        namespace = dest.get("namespace", "")
        if not is_destination_permitted(project, target, namespace):
            found.append(
                f"Application {app['metadata']['name']}: destination {target} namespace {namespace!r} is not "
                f"permitted by AppProject {project['metadata']['name']} (IsDestinationPermitted)"
            )
    return found


def env_applications(env: str, objs: list[Obj], appset: Obj, root: Path = REPO) -> list[Obj]:
    """The Application `appset` generates for `env` from the checkout at `root`, then those `objs` hold."""
    own = [o for o in objs if o["kind"] == "Application"]
    path = f"environments/{env}"
    (made,) = [a for a in generated_applications(appset, root) if a["spec"]["source"]["path"] == path]
    return [made, *own]


@pytest.mark.parametrize("env", environments())
def test_is_destination_permitted(env: str, rendered: dict[str, list[Obj]]) -> None:
    objs = bootstrap()
    project, appset = find(objs, "AppProject", "guessme"), find(objs, "ApplicationSet", "guessme")
    apps = env_applications(env, rendered[env], appset)
    assert len(apps) >= 3
    problems = destination_problems(project, apps, server_of(env))
    assert not problems, "\n".join(problems)


def test_application_without_namespace_is_refused(rendered: dict[str, list[Obj]]) -> None:
    objs = bootstrap()
    project, appset = (
        find(objs, "AppProject", "guessme"),
        copy.deepcopy(find(objs, "ApplicationSet", "guessme")),
    )
    del appset["spec"]["template"]["spec"]["destination"]["namespace"]  # as before this change
    found = destination_problems(
        project, env_applications("local", rendered["local"], appset), server_of("local")
    )
    assert found == [
        "Application guessme-local: destination https://kubernetes.default.svc namespace '' is not permitted "
        "by AppProject guessme (IsDestinationPermitted)"
    ]


def test_application_outside_the_projects_namespaces_is_refused(rendered: dict[str, list[Obj]]) -> None:
    objs = bootstrap()
    project, appset = find(objs, "AppProject", "guessme"), find(objs, "ApplicationSet", "guessme")
    apps = copy.deepcopy(env_applications("local", rendered["local"], appset))
    next(a for a in apps if a["metadata"]["name"] == "airflow")["spec"]["destination"]["namespace"] = (
        "airflow"
    )
    found = destination_problems(project, apps, server_of("local"))
    assert found == [
        "Application airflow: destination https://kubernetes.default.svc namespace 'airflow' "
        "is not permitted by AppProject guessme (IsDestinationPermitted)"
    ]


# --- custom resources and their CRDs ---------------------------------------------------------------


def sync_options(obj: Obj) -> set[str]:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(SYNC_OPTIONS, "")
    return {o.strip() for o in value.split(",") if o.strip()}


def crd_order_problems(parent: Obj, objs: list[Obj], children: dict[str, list[Obj]]) -> list[str]:
    """Custom resources of `parent`'s sync that would fail its first sync on a fresh cluster.

    children: child Application name -> the objects it installs (its chart, CRDs included).
    """
    own_crds = crd_kinds(objs)
    from_child = {gk: name for name, child_objs in children.items() for gk in crd_kinds(child_objs)}
    policy = parent["spec"].get("syncPolicy") or {}
    app_skips = SKIP_DRY_RUN in (policy.get("syncOptions") or [])
    found: list[str] = []
    late = False
    for obj in objs:
        group = obj["apiVersion"].rpartition("/")[0]
        gk = (group, obj["kind"])
        # Built-in API groups: the core group, unqualified ones (apps, batch) and *.k8s.io.
        builtin = "." not in group or group.endswith(".k8s.io")
        if builtin or group in PREINSTALLED_GROUPS or gk in own_crds:
            continue
        if gk not in from_child:
            found.append(f"{describe(obj)}: no Application installs the CRD of {obj['kind']} ({group})")
            continue
        late = True
        if not app_skips and SKIP_DRY_RUN not in sync_options(obj):
            found.append(
                f"{describe(obj)}: its CRD arrives with Application {from_child[gk]}, not in this sync; "
                f"without {SKIP_DRY_RUN} (annotation {SYNC_OPTIONS} or the Application's syncOptions) "
                "gitops-engine fails the whole sync at dry-run"
            )
    retry = policy.get("retry") or {}
    if late and policy.get("automated") is not None and not retry.get("limit"):
        found.append(
            f"Application {parent['metadata']['name']}: custom resources are applied before their CRDs "
            "exist, and automated sync does not retry a failed revision: set syncPolicy.retry"
        )
    return found


def generated_for(env: str, root: Path = REPO) -> Obj:
    return next(a for a in generated(root) if a["spec"]["source"]["path"] == f"environments/{env}")


@pytest.mark.parametrize("env", environments())
def test_skip_dry_run_on_missing_resource(
    env: str, rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    children = {"kuberay-operator": chart_rendered[env]}
    assert ("ray.io", "RayService") in crd_kinds(chart_rendered[env])
    problems = crd_order_problems(generated_for(env), rendered[env], children)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("annotation", "RayService guessme/guessme-serve: its CRD arrives with Application kuberay-operator"),
        ("retry", "Application guessme-local: custom resources are applied before their CRDs"),
        ("chart", "RayJob guessme/guessme-train: no Application installs the CRD of RayJob (ray.io)"),
    ],
)
def test_custom_resource_before_its_crd_is_caught(
    edit: str, expected: str, rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    objs, parent = copy.deepcopy(rendered["local"]), generated_for("local")
    children = {"kuberay-operator": chart_rendered["local"]}
    if edit == "annotation":
        del find(objs, "RayService", "guessme-serve")["metadata"]["annotations"][SYNC_OPTIONS]
    elif edit == "retry":
        del parent["spec"]["syncPolicy"]["retry"]
    else:
        children = {
            "kuberay-operator": [
                o for o in chart_rendered["local"] if o["metadata"]["name"] != "rayjobs.ray.io"
            ]
        }
    found = crd_order_problems(parent, objs, children)
    assert any(p.startswith(expected) for p in found), found


def test_application_level_option_also_allows_it(
    rendered: dict[str, list[Obj]], chart_rendered: dict[str, list[Obj]]
) -> None:
    objs, parent = copy.deepcopy(rendered["local"]), generated_for("local")
    for kind, name in (("RayService", "guessme-serve"), ("RayJob", "guessme-train")):
        del find(objs, kind, name)["metadata"]["annotations"][SYNC_OPTIONS]
    parent["spec"]["syncPolicy"]["syncOptions"].append(SKIP_DRY_RUN)
    problems = crd_order_problems(parent, objs, {"kuberay-operator": chart_rendered["local"]})
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", environments())
def test_project_admits_what_the_charts_install(env: str, chart_rendered: dict[str, list[Obj]]) -> None:
    """The kuberay-operator Application (project guessme) applies the chart's objects: its namespaces
    and cluster-scoped kinds (ClusterRoles, CRDs) must be admitted as the repository's own are."""
    project = find(bootstrap(), "AppProject", "guessme")
    problems = object_admission_problems(project, env, chart_rendered[env])
    assert not problems, "\n".join(problems)


def test_chart_object_outside_the_project_is_caught(chart_rendered: dict[str, list[Obj]]) -> None:
    project = copy.deepcopy(find(bootstrap(), "AppProject", "guessme"))
    project["spec"]["clusterResourceWhitelist"] = [
        k for k in project["spec"]["clusterResourceWhitelist"] if k["kind"] != "CustomResourceDefinition"
    ]
    problems = object_admission_problems(project, "local", chart_rendered["local"])
    assert "local: cluster-scoped CustomResourceDefinition not in clusterResourceWhitelist" in problems
