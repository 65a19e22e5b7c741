"""hadolint on every Dockerfile and actionlint on every workflow, each shown able to fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from manifest_tools import REPO

pytestmark = pytest.mark.manifests

BIN = Path(sys.executable).parent
DOCKERFILES = sorted(
    p.relative_to(REPO) for p in [*REPO.glob("apps/*/Dockerfile"), *REPO.glob("platform/*/Dockerfile")]
)
WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.y*ml"))


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hadolint"), "--config", str(REPO / ".hadolint.yaml"), "--no-color", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "actionlint"), "-no-color", *map(str, paths)],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
    )  # fmt: skip


def test_every_image_has_a_dockerfile() -> None:
    assert {str(p) for p in DOCKERFILES} >= {
        "apps/guessme-serve/Dockerfile",
        "apps/guessme-train/Dockerfile",
        "apps/frontend/Dockerfile",
        "platform/mlflow/Dockerfile",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=str)
def test_hadolint(dockerfile: Path) -> None:
    result = hadolint(REPO / dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_floating_base_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install mlflow\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3006" in result.stdout


def test_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yaml", "kind.yaml"}


def test_actionlint() -> None:
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github/workflows/bad.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text((REPO / ".github/workflows/ci.yaml").read_text().replace("runs-on:", "run-on:"))
    result = actionlint(bad)
    assert result.returncode != 0
    assert "run-on" in result.stdout
