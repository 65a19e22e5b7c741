"""Fixtures of the offline manifest tests: each overlay rendered once per session, the CRD schemas."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from charts import chart_folder, charts_dir, is_chart_application, render_application
from manifest_tools import REPO, Obj, crd_schemas, crds_dir, environments, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """environment name -> its rendered objects."""
    return {env: render(REPO / "environments" / env) for env in environments()}


@pytest.fixture(scope="session")
def chart_rendered(rendered: dict[str, list[Obj]]) -> dict[str, list[Obj]]:
    """environment name -> the objects of its vendored charts, rendered as its Applications say."""
    folder = charts_dir()
    if folder is None:
        pytest.skip(
            "no charts: tests/manifests/charts is missing and GUESSME_CHARTS_DIR is unset or not a folder; "
            "vendor the KubeRay chart there (see tests/manifests/charts/README.md)"
        )
    return {env: chart_objects(env, objs, folder) for env, objs in rendered.items()}


def chart_objects(env: str, objs: list[Obj], folder: Path) -> list[Obj]:
    """The objects of the vendored charts that the Applications among `objs` install."""
    apps = [o for o in objs if o["kind"] == "Application" and is_chart_application(o)]
    vendored = [a for a in apps if chart_folder(a, folder).is_dir()]
    assert "kuberay-operator" in {a["metadata"]["name"] for a in vendored}, (
        f"{env}: KubeRay chart not vendored in {folder}"
    )
    return [o for app in vendored for o in render_application(app, folder)]


@pytest.fixture(scope="session")
def schemas() -> dict[tuple[str, str], Obj]:
    folder = crds_dir()
    if folder is None:
        pytest.skip(
            "no CRDs: tests/manifests/crds is missing and GUESSME_CRDS_DIR is unset or not a folder; "
            "copy KubeRay v1.7.0 and Argo CD v3.5.1 CRDs there (see tests/manifests/crds/README.md)"
        )
    found = crd_schemas(folder)
    wanted = {"RayService", "RayJob", "RayCluster", "Application", "ApplicationSet", "AppProject"}
    missing = wanted - {kind for _, kind in found}
    assert not missing, f"CRDs missing from {folder}: {sorted(missing)}"
    return found


MANIFEST_FOLDERS = (
    "platform",
    "environments",
    "apps/guessme-serve",
    "apps/guessme-train/k8s",
    "apps/frontend/k8s",
)


def copy_manifests(dest: Path) -> Path:
    """A copy of the folders the environments render from (what Argo CD reads of a checkout)."""
    for part in MANIFEST_FOLDERS:
        shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("src", "node_modules"))
    return dest


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A scratch copy of the manifest folders, to break on purpose."""
    return copy_manifests(tmp_path / "repo")
