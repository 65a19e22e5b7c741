"""Fixtures shared by the GitOps tests: a throw-away clone of the project for the local sync, and a
reset for the tests whose sync deploys the repository's own serve config."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.repo_snapshot import TEMPLATE_URI, git, snapshot_repo


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project committed once per test module, its local overlay naming TEMPLATE_URI."""
    return snapshot_repo(tmp_path_factory.mktemp("template") / "repo", TEMPLATE_URI)


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """A fresh clone of `template` per test (cheaper than a snapshot), with a repo-local identity."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(template), str(clone))
    git(clone, "config", "user.name", "Developer")
    git(clone, "config", "user.email", "dev@example.com")
    return clone


@pytest.fixture
def restore_serve_app(serve_app: Any, trained_model: Any) -> Iterator[None]:
    """The sync deploys serve-config.yaml as `make up` does, without the test-only settings (such as
    `test_client_targets`) that later tests of the shared serve app rely on: put the fixture's own
    config back afterwards."""
    yield
    serve_app.deploy(trained_model.uri)
