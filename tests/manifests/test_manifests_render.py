"""Every kustomization renders offline, and none reaches the network."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from manifest_tools import REPO, RenderError, environments, kustomizations, render

from guessme_contracts.overlay import environments as contract_environments

pytestmark = pytest.mark.manifests

REMOTE_MARKERS = ("://", "github.com/", "?ref=", "git@")


def remote_references(kustomization: Path) -> list[str]:
    """Remote bases/resources/components and helmCharts in one kustomization.yaml."""
    spec = yaml.safe_load(kustomization.read_text()) or {}
    found = [f"helmCharts in {kustomization}"] if spec.get("helmCharts") else []
    for key in ("resources", "components", "bases"):
        for entry in spec.get(key) or []:
            if any(marker in str(entry) for marker in REMOTE_MARKERS):
                found.append(f"{key}: {entry}")
    return found


def test_argo_cd_and_the_pipeline_find_the_same_environments() -> None:
    """Two rules that must agree: Argo CD's Git generator (every folder of environments/ but base) and
    guessme_contracts.overlay.environments (every folder with a model.env), which the pipeline uses."""
    envs = environments()
    assert envs, "Argo CD's ApplicationSet finds no environment folder"
    assert "base" not in envs, "the shared Component environments/base is not an environment"
    assert contract_environments(REPO) == envs


def test_a_folder_the_two_rules_disagree_on_is_caught(repo_copy: Path) -> None:
    (repo_copy / "environments/base/model.env").write_text("MODEL_URI=\n")
    assert contract_environments(repo_copy) != environments(repo_copy)


@pytest.mark.parametrize("folder", kustomizations(), ids=lambda p: str(p.relative_to(REPO)))
def test_kustomization_is_local(folder: Path) -> None:
    assert remote_references(folder / "kustomization.yaml") == []


@pytest.mark.parametrize("folder", kustomizations(), ids=lambda p: str(p.relative_to(REPO)))
def test_kustomization_renders(folder: Path) -> None:
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    if spec.get("kind") == "Component":
        pytest.skip("a kustomize Component renders only inside an overlay (the environments use them)")
    objs = render(folder)
    assert objs, f"{folder} renders no objects"
    assert all(o.get("kind") and o.get("metadata", {}).get("name") for o in objs)


def test_rendered_names_are_unique(rendered: dict[str, list[dict]]) -> None:
    for env, objs in rendered.items():
        keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs]
        assert len(keys) == len(set(keys)), f"{env}: duplicate objects"


def test_remote_base_is_caught(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources:\n  - github.com/ray-project/kuberay/ray-operator/config/default?ref=v1.7.0\n"
    )
    assert remote_references(tmp_path / "kustomization.yaml")


def test_broken_kustomization_is_caught(repo_copy: Path) -> None:
    (repo_copy / "apps/frontend/k8s/service.yaml").unlink()
    with pytest.raises(RenderError, match=r"service\.yaml"):
        render(repo_copy / "environments/local")
