"""Every Argo CD Application (and each one the ApplicationSet generates) points at something real."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from manifest_tools import REPO, Obj, RenderError, environments, find, render

pytestmark = pytest.mark.manifests

OWN_REPO = "https://github.com/guessme-dev/guessme.git"
EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")
LABEL = "guessme.dev/environment"


def bootstrap() -> list[Obj]:
    return render(REPO / "platform/argocd")


def generated_applications(appset: Obj) -> list[Obj]:
    """The Applications the cluster generator makes, one per environment value its selector admits."""
    (generator,) = appset["spec"]["generators"]
    (expr,) = generator["clusters"]["selector"]["matchExpressions"]
    assert expr["key"] == LABEL
    assert expr["operator"] == "In"
    apps = []
    for env in expr["values"]:
        app = copy.deepcopy(appset["spec"]["template"])
        for source in [app["spec"]["source"]]:
            source["path"] = source["path"].replace(f'{{{{ index .metadata.labels "{LABEL}" }}}}', env)
        app["metadata"]["name"] = f"guessme-{env}"
        app["kind"] = "Application"
        apps.append(app)
    return apps


def sources(app: Obj) -> list[Obj]:
    spec = app["spec"]
    return list(spec.get("sources") or [spec["source"]])


def problems(app: Obj, root: Path) -> list[str]:
    """What in one Application does not exist, does not render, or floats."""
    name = app["metadata"]["name"]
    found: list[str] = []
    refs = {s["ref"] for s in sources(app) if "ref" in s}
    for source in sources(app):
        if source.get("chart"):
            if not EXACT_VERSION.fullmatch(str(source.get("targetRevision", ""))):
                found.append(f"{name}: chart {source['chart']} is not pinned to an exact version")
            for values in (source.get("helm") or {}).get("valueFiles", []):
                ref, _, rel = values.partition("/")
                if ref.lstrip("$") not in refs or not (root / rel).is_file():
                    found.append(f"{name}: values file {values} does not exist")
        elif source["repoURL"] != OWN_REPO:
            found.append(f"{name}: unexpected repository {source['repoURL']}")
        elif "path" in source:
            path = root / source["path"]
            if not (path / "kustomization.yaml").is_file():
                found.append(f"{name}: path {source['path']} has no kustomization.yaml")
            else:
                try:
                    render(path)
                except RenderError as err:
                    found.append(f"{name}: {err}")
    return found


def all_applications(rendered: dict[str, list[Obj]]) -> list[Obj]:
    apps = [o for objs in rendered.values() for o in objs if o["kind"] == "Application"]
    return apps + generated_applications(find(bootstrap(), "ApplicationSet", "guessme"))


def test_every_application_points_at_something_real(rendered: dict[str, list[Obj]]) -> None:
    apps = all_applications(rendered)
    assert {a["metadata"]["name"] for a in apps} >= {
        "kuberay-operator",
        "airflow",
        "guessme-local",
        "guessme-prod",
    }
    assert [p for app in apps for p in problems(app, REPO)] == []


def test_applicationset_covers_exactly_the_environments() -> None:
    apps = generated_applications(find(bootstrap(), "ApplicationSet", "guessme"))
    assert sorted(a["spec"]["source"]["path"] for a in apps) == [f"environments/{e}" for e in environments()]


def test_project_admits_every_source(rendered: dict[str, list[Obj]]) -> None:
    project = find(bootstrap(), "AppProject", "guessme")
    repos = set(project["spec"]["sourceRepos"])
    assert {s["repoURL"] for app in all_applications(rendered) for s in sources(app)} <= repos
    assert all(app["spec"]["project"] == "guessme" for app in all_applications(rendered))


def test_kuberay_is_pinned_and_applied_server_side(rendered: dict[str, list[Obj]]) -> None:
    app = find(rendered["local"], "Application", "kuberay-operator")
    assert app["spec"]["source"]["targetRevision"] == "1.7.0"
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]


def test_autoscaler_replicas_are_ignored() -> None:
    template: dict[str, Any] = find(bootstrap(), "ApplicationSet", "guessme")["spec"]["template"]
    kinds = {d["kind"] for d in template["spec"]["ignoreDifferences"]}
    assert {"RayService", "RayCluster"} <= kinds
    assert "RespectIgnoreDifferences=true" in template["spec"]["syncPolicy"]["syncOptions"]


def test_git_sync_and_values_name_this_repository() -> None:
    values = (REPO / "platform/airflow/values.yaml").read_text()
    assert f"repo: {OWN_REPO}" in values


def test_application_pointing_nowhere_is_caught(rendered: dict[str, list[Obj]]) -> None:
    app = copy.deepcopy(generated_applications(find(bootstrap(), "ApplicationSet", "guessme"))[0])
    app["spec"]["source"]["path"] = "environments/staging"
    assert any("environments/staging" in p for p in problems(app, REPO))


def test_missing_values_file_and_floating_chart_are_caught(rendered: dict[str, list[Obj]]) -> None:
    app = copy.deepcopy(find(rendered["local"], "Application", "airflow"))
    chart = app["spec"]["sources"][0]
    chart["targetRevision"] = "1.*"
    chart["helm"]["valueFiles"] = ["$values/platform/airflow/valuez.yaml"]
    found = problems(app, REPO)
    assert any("not pinned" in p for p in found)
    assert any("valuez.yaml" in p for p in found)


def test_path_that_does_not_render_is_caught(repo_copy: Path) -> None:
    (repo_copy / "environments/prod/kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    app = generated_applications(find(bootstrap(), "ApplicationSet", "guessme"))[1]
    assert app["spec"]["source"]["path"] == "environments/prod"
    assert any("missing.yaml" in p for p in problems(app, repo_copy))
