"""Fixtures of the offline manifest tests: each overlay rendered once per session, the CRD schemas."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from manifest_tools import REPO, Obj, crd_schemas, crds_dir, environments, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """environment name -> its rendered objects."""
    return {env: render(REPO / "environments" / env) for env in environments()}


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
