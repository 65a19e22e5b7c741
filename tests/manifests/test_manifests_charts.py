"""Upstream charts: the vendored KubeRay chart rendered with Helm's engine and checked like our own
manifests; the Airflow chart's behaviour the platform relies on, as rules on platform/airflow/values.yaml."""

from __future__ import annotations

import copy
import filecmp
from collections.abc import Callable

import pytest
from airflow_chart import RULES, load_values, values_problems
from charts import (
    application_values,
    chart_folder,
    charts_dir,
    render_application,
    template_value_paths,
    unknown_chart_values,
)
from manifest_tools import REPO, VENDORED_CRDS, Obj, container_problems, describe, find, pod_specs, validate

pytestmark = pytest.mark.manifests


def chart_values_problems(app: Obj) -> list[str]:
    """Keys of an Application's helm.valuesObject that no template of its (vendored) chart reads."""
    folder = charts_dir()
    assert folder is not None
    chart = chart_folder(app, folder)
    return [
        f"Application {app['metadata']['name']}: helm.valuesObject.{key}: not a value the chart "
        f"{chart.name} reads (no template uses .Values.{key})"
        for key in unknown_chart_values(application_values(app), template_value_paths(chart))
    ]


def kuberay_app(rendered: dict[str, list[Obj]]) -> Obj:
    return find(rendered["local"], "Application", "kuberay-operator")


def test_kuberay_chart_renders_what_argocd_installs(chart_rendered: dict[str, list[Obj]]) -> None:
    for objs in chart_rendered.values():
        deployment = find(objs, "Deployment", "kuberay-operator")
        assert deployment["metadata"]["namespace"] == "kuberay-system"
        assert {o["metadata"]["name"] for o in objs if o["kind"] == "CustomResourceDefinition"} >= {
            "rayservices.ray.io",
            "rayjobs.ray.io",
            "rayclusters.ray.io",
        }
        # The Application's values reached the chart: its resources, not the chart's defaults.
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}


def test_kuberay_values_are_keys_the_chart_reads(rendered: dict[str, list[Obj]]) -> None:
    problems = chart_values_problems(kuberay_app(rendered))
    assert not problems, "\n".join(problems)


def test_unknown_kuberay_values_key_is_caught(rendered: dict[str, list[Obj]]) -> None:
    app = copy.deepcopy(kuberay_app(rendered))
    values = app["spec"]["source"]["helm"]["valuesObject"]
    values["resource"] = values.pop("resources")  # a typo the chart would silently ignore
    assert chart_values_problems(app) == [
        "Application kuberay-operator: helm.valuesObject.resource: not a value the chart "
        "kuberay-operator-1.7.0 reads (no template uses .Values.resource)"
    ]


def test_chart_objects_validate(chart_rendered: dict[str, list[Obj]], schemas: dict) -> None:
    objs = chart_rendered["local"]
    assert any(o["kind"] == "CustomResourceDefinition" for o in objs)  # the CRDs Argo CD applies too
    problems = [str(p) for o in objs for p in validate(o, schemas)]
    assert not problems, "\n".join(problems)


def test_chart_pods_are_hardened(chart_rendered: dict[str, list[Obj]]) -> None:
    pods = [(o, where, pod) for o in chart_rendered["local"] for where, pod in pod_specs(o)]
    assert pods, "the chart renders no pod template"
    problems = [f"{describe(o)} {w}: {p}" for o, w, pod in pods for p in container_problems(pod)]
    assert not problems, "\n".join(problems)


def test_vendored_crds_are_the_charts() -> None:
    """One source: the CRD schemas the tests validate against are those the chart installs."""
    folder = charts_dir()
    assert folder is not None
    crds = folder / "kuberay-operator-1.7.0/crds"
    for vendored in sorted((VENDORED_CRDS / "kuberay-v1.7.0").glob("*.yaml")):
        assert filecmp.cmp(vendored, crds / vendored.name, shallow=False), vendored.name


def test_unknown_values_render_nothing_wrong_silently(rendered: dict[str, list[Obj]]) -> None:
    """Why the key check exists: Helm itself ignores a misspelt key (this chart has no schema)."""
    folder = charts_dir()
    assert folder is not None
    app = kuberay_app(rendered)
    typo = {**application_values(app), "resource": {"requests": {"cpu": "1"}}}
    typo.pop("resources")
    deployment = find(render_application(app, folder, typo, crds=False), "Deployment", "kuberay-operator")
    assert "requests" not in deployment["spec"]["template"]["spec"]["containers"][0]["resources"]


# --- the Airflow chart (not vendored): rules citing its templates, on our values -------------------


def tracked_revision(rendered: dict[str, list[Obj]]) -> str:
    app = find(rendered["local"], "Application", "airflow")
    return str(next(s["targetRevision"] for s in app["spec"]["sources"] if "ref" in s))


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_airflow_chart_rule(rule: Callable[[dict, str], list[str]], rendered: dict[str, list[Obj]]) -> None:
    """One test per chart rule (airflow_chart.py), named after it: the values meet it."""
    problems = rule(load_values(REPO), tracked_revision(rendered))
    assert not problems, "\n".join(problems)


def broken_values(edit: str) -> dict:
    values = copy.deepcopy(load_values(REPO))
    if edit == "unknown key":
        values["scheduler"]["resourcez"] = values["scheduler"].pop("resources")
    elif edit == "api server policy":  # as before this change
        del values["apiServer"]["networkPolicy"]
    elif edit == "helm hook":
        del values["migrateDatabaseJob"]
    elif edit == "security context":
        del values["securityContexts"]["pod"]["runAsUser"]
        del values["securityContexts"]["pod"]["fsGroup"]
    elif edit == "git-sync ref":
        values["dags"]["gitSync"] = {**values["dags"]["gitSync"], "branch": "main", "rev": "HEAD"}
        del values["dags"]["gitSync"]["ref"]
    return values


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            "unknown key",
            "platform/airflow/values.yaml: scheduler.resourcez: not a key of the apache-airflow 1.22.0 chart",
        ),
        ("api server policy", "platform/airflow/values.yaml: apiServer.networkPolicy.ingress.from: empty"),
        ("helm hook", "platform/airflow/values.yaml: migrateDatabaseJob.useHelmHooks: not false"),
        (
            "helm hook",
            "platform/airflow/values.yaml: migrateDatabaseJob.jobAnnotations: no argocd.argoproj.io/hook",
        ),
        ("security context", "platform/airflow/values.yaml: securityContexts.pod.runAsUser: missing"),
        ("security context", "platform/airflow/values.yaml: securityContexts.pod.fsGroup: missing"),
        ("git-sync ref", "platform/airflow/values.yaml: dags.gitSync.ref: None, not 'main'"),
    ],
)
def test_broken_airflow_values_are_caught(edit: str, expected: str, rendered: dict[str, list[Obj]]) -> None:
    found = values_problems(broken_values(edit), tracked_revision(rendered))
    assert any(p.startswith(expected) for p in found), found
