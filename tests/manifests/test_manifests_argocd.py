"""Every Argo CD Application (and each one the ApplicationSet generates) points at something real."""

from __future__ import annotations

import copy
import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from appset_model import environment_generator, generated_applications, sample_clusters
from manifest_tools import REPO, Obj, RenderError, environments, find, pod_specs, render

pytestmark = pytest.mark.manifests

OWN_REPO = "https://github.com/guessme-dev/guessme.git"
EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")


def bootstrap() -> list[Obj]:
    return render(REPO / "platform/argocd")


def generated(root: Path = REPO) -> list[Obj]:
    """The Applications the bootstrap's ApplicationSet makes from the checkout at `root` (appset_model)."""
    return generated_applications(find(bootstrap(), "ApplicationSet", "guessme"), root)


def server_of(env: str) -> str:
    """The server of the sample cluster labelled `env` (appset_model.sample_clusters)."""
    (cluster,) = sample_clusters([env])
    return str(cluster["server"])


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
    return apps + generated()


def test_every_application_points_at_something_real(rendered: dict[str, list[Obj]]) -> None:
    apps = all_applications(rendered)
    envs = environments()
    assert envs
    wanted = {"kuberay-operator", "airflow", *(f"guessme-{e}" for e in envs)}
    assert {a["metadata"]["name"] for a in apps} >= wanted
    assert [p for app in apps for p in problems(app, REPO)] == []


def environment_folders(root: Path) -> list[str]:
    """The folders under environments/ that are overlays (a Kustomization, not the shared Component)."""
    found = []
    for path in sorted((root / "environments").glob("*/kustomization.yaml")):
        if yaml.safe_load(path.read_text()).get("kind", "Kustomization") == "Kustomization":
            found.append(path.parent.name)
    return found


def test_applicationset_covers_exactly_the_environments() -> None:
    """Argo CD finds every overlay under environments/ and nothing else (not the shared base)."""
    apps = generated()
    assert sorted(a["spec"]["source"]["path"] for a in apps) == [
        f"environments/{e}" for e in environment_folders(REPO)
    ]
    assert sorted(a["metadata"]["name"] for a in apps) == [f"guessme-{e}" for e in environment_folders(REPO)]


def test_a_folder_the_generator_would_wrongly_find_is_caught(repo_copy: Path) -> None:
    """Without its exclude, the generator would make an Application of the shared Component."""
    appset = copy.deepcopy(find(bootstrap(), "ApplicationSet", "guessme"))
    environment_generator(appset)["git"]["directories"] = [{"path": "environments/*"}]
    paths = [a["spec"]["source"]["path"] for a in generated_applications(appset, repo_copy)]
    assert "environments/base" in paths
    assert paths != [f"environments/{e}" for e in environment_folders(repo_copy)]


def test_environments_are_found_and_synced_at_one_revision() -> None:
    """The generator lists the folders of the revision the Applications then sync."""
    appset = find(bootstrap(), "ApplicationSet", "guessme")
    revision = environment_generator(appset)["git"]["revision"]
    assert revision == appset["spec"]["template"]["spec"]["source"]["targetRevision"] == "main"


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
    app = copy.deepcopy(generated()[0])
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
    (app,) = [a for a in generated(repo_copy) if a["spec"]["source"]["path"] == "environments/prod"]
    assert any("missing.yaml" in p for p in problems(app, repo_copy))


# --- project destinations: every cluster the ApplicationSet admits, only Guessme's namespaces -------


def destination_problems(project: Obj, env: str, objs: list[Obj]) -> list[str]:
    """Objects of one environment's generated Application (on a labelled cluster, remote or not) that
    the project would refuse: a namespace it does not admit there, a cluster-scoped kind not listed."""
    spec = project["spec"]
    server = server_of(env)
    cluster_kinds = {(k["group"], k["kind"]) for k in spec.get("clusterResourceWhitelist", [])}
    found: list[str] = []
    for obj in objs:
        ns = obj["metadata"].get("namespace")
        if ns is None:
            group = obj["apiVersion"].rpartition("/")[0]
            if (group, obj["kind"]) not in cluster_kinds:
                found.append(f"{env}: cluster-scoped {obj['kind']} not in clusterResourceWhitelist")
        elif not any(
            fnmatch.fnmatchcase(server, d.get("server", ""))
            and fnmatch.fnmatchcase(ns, d.get("namespace", ""))
            for d in spec["destinations"]
        ):
            found.append(f"{env}: {obj['kind']} {ns}/{obj['metadata']['name']} on {server} is not admitted")
    return found


def test_project_admits_every_environment_cluster(rendered: dict[str, list[Obj]]) -> None:
    project = find(bootstrap(), "AppProject", "guessme")
    assert [p for env, objs in rendered.items() for p in destination_problems(project, env, objs)] == []


def test_project_limited_to_the_in_cluster_server_is_caught(rendered: dict[str, list[Obj]]) -> None:
    project = copy.deepcopy(find(bootstrap(), "AppProject", "guessme"))
    for d in project["spec"]["destinations"]:
        d["server"] = "https://kubernetes.default.svc"
    assert destination_problems(project, "local", rendered["local"]) == []
    assert any("prod.guessme.example" in p for p in destination_problems(project, "prod", rendered["prod"]))
    project["spec"]["destinations"] = [{"server": "*", "namespace": "guessme"}]
    assert any("guessme-platform/" in p for p in destination_problems(project, "local", rendered["local"]))


def test_training_suspend_is_left_to_people() -> None:
    """`kubectl patch ... suspend:false` starts training; selfHeal must not revert it."""
    template = find(bootstrap(), "ApplicationSet", "guessme")["spec"]["template"]["spec"]
    ignored = [d for d in template["ignoreDifferences"] if d["kind"] == "RayJob" and d["group"] == "ray.io"]
    assert any("/spec/suspend" in d.get("jsonPointers", []) for d in ignored)
    assert "RespectIgnoreDifferences=true" in template["syncPolicy"]["syncOptions"]


# --- facts repeated in several files agree ------------------------------------------------------

REPO_URL_IN_VALUES = re.compile(r"^\s*repo:\s*(\S+)\s*$", re.MULTILINE)


def own_repo_urls(root: Path) -> dict[str, str]:
    """Where this repository's URL is written -> the URL written there."""
    appset = find(render(root / "platform/argocd"), "ApplicationSet", "guessme")
    project = find(render(root / "platform/argocd"), "AppProject", "guessme")
    airflow = find(render(root / "platform/airflow"), "Application", "airflow")
    values = REPO_URL_IN_VALUES.findall((root / "platform/airflow/values.yaml").read_text())
    own = [r for r in project["spec"]["sourceRepos"] if r.endswith(".git")]
    return {
        "applicationset.yaml": appset["spec"]["template"]["spec"]["source"]["repoURL"],
        "applicationset.yaml generator": environment_generator(appset)["git"]["repoURL"],
        **{f"appproject.yaml sourceRepos[{i}]": r for i, r in enumerate(own)},
        "airflow/application.yaml": next(s["repoURL"] for s in airflow["spec"]["sources"] if "ref" in s),
        **{f"airflow/values.yaml gitSync[{i}]": r for i, r in enumerate(values)},
    }


def mlflow_urls(objs: list[Obj], root: Path) -> tuple[str, dict[str, str]]:
    """(the URL of the MLflow Service, where MLFLOW_TRACKING_URI is set -> its value)."""
    service = find(objs, "Service", "mlflow")
    port = service["spec"]["ports"][0]["port"]
    expected = (
        f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local:{port}"
    )
    found: dict[str, str] = {}
    for obj in objs:
        for where, pod in pod_specs(obj):
            for c in pod.get("initContainers", []) + pod.get("containers", []):
                for e in c.get("env", []):
                    if e["name"] == "MLFLOW_TRACKING_URI":
                        found[f"{obj['kind']} {obj['metadata']['name']} {where} {c['name']}"] = e["value"]
    values = yaml.safe_load((root / "platform/airflow/values.yaml").read_text())
    for e in values.get("env", []):
        if e["name"] == "MLFLOW_TRACKING_URI":
            found["airflow/values.yaml env"] = e["value"]
    return expected, found


def test_repository_url_agrees_everywhere() -> None:
    urls = own_repo_urls(REPO)
    assert len(urls) >= 4
    assert set(urls.values()) == {OWN_REPO}, urls


@pytest.mark.parametrize("env", environments())
def test_mlflow_url_agrees_with_its_service(env: str, rendered: dict[str, list[Obj]]) -> None:
    expected, found = mlflow_urls(rendered[env], REPO)
    assert {"airflow/values.yaml env"} < set(found)
    assert any(k.startswith("RayJob") for k in found)
    assert any(k.startswith("RayService") for k in found)
    assert {k: v for k, v in found.items() if v != expected} == {}


def test_drifting_repository_url_is_caught(repo_copy: Path) -> None:
    values = repo_copy / "platform/airflow/values.yaml"
    values.write_text(values.read_text().replace(OWN_REPO, "https://github.com/someone/fork.git"))
    assert set(own_repo_urls(repo_copy).values()) == {OWN_REPO, "https://github.com/someone/fork.git"}


def test_drifting_mlflow_url_is_caught(repo_copy: Path) -> None:
    job = repo_copy / "apps/guessme-train/k8s/rayjob.yaml"
    job.write_text(job.read_text().replace("svc.cluster.local:5000", "svc.cluster.local:5001"))
    expected, found = mlflow_urls(render(repo_copy / "environments/local"), repo_copy)
    drifted = [k for k, v in found.items() if v != expected]
    assert drifted == ["RayJob guessme-train spec.rayClusterSpec.headGroupSpec ray-head"]
