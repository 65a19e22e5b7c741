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
    out: dict[str, list[Obj]] = {}
    for env, objs in rendered.items():
        apps = [o for o in objs if o["kind"] == "Application" and is_chart_application(o)]
        vendored = [a for a in apps if chart_folder(a, folder).is_dir()]
        assert "kuberay-operator" in {a["metadata"]["name"] for a in vendored}, (
            f"{env}: KubeRay chart not vendored in {folder}"
        )
        out[env] = [o for app in vendored for o in render_application(app, folder)]
    return out


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


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A scratch copy of the manifest folders, to break on purpose."""
    dest = tmp_path / "repo"
    for part in (
        "platform",
        "environments",
        "apps/guessme-serve",
        "apps/guessme-train/k8s",
        "apps/frontend/k8s",
    ):
        shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("src", "node_modules"))
    return dest
