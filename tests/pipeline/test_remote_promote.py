"""Promotion on Kubernetes (guessme_pipeline.remote_promote): the commit built in a private clone and
pushed to the remote Argo CD watches, or proposed as a pull request; races with other pushes rebuilt."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import OVERLAY, committed_uri, git, make_repo
from support.http_stub import StubHandler, serving

pytestmark = pytest.mark.unit


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote whose path reads like a GitHub URL (the pull request's repository comes from it)."""
    source = make_repo(tmp_path / "source", model_env="MODEL_URI=models:/guessme-cnn/1\n")
    bare = tmp_path / "github.com" / "guessme-dev" / "guessme.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(source), str(bare)], check=True)
    return bare


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """GitHub's `POST /repos/{owner}/{repo}/pulls`, recording what it was sent."""
    received: list[dict[str, Any]] = []

    class Handler(StubHandler):
        def do_POST(self) -> None:
            received.append({"path": self.path, "auth": self.headers["Authorization"], **self.read_json()})
            self.send_json(201, {"html_url": "https://github.com/guessme-dev/guessme/pull/12"})

    with serving(Handler) as url:
        monkeypatch.setenv("GITHUB_API_URL", url)
        monkeypatch.setenv("GUESSME_GIT_TOKEN", "t0ken")
        monkeypatch.delenv("GUESSME_GITHUB_REPO", raising=False)
        yield received


def candidate(version: int) -> Any:
    from guessme_contracts.model_uri import ModelRef
    from guessme_pipeline.promote import Candidate

    return Candidate(
        ModelRef.parse(f"models:/guessme-cnn/{version}"), run_id="b" * 32, metrics={"test_accuracy": 0.99}
    )


def test_a_pull_request_is_proposed_and_main_is_left_alone(
    remote: Path, github: list[dict[str, Any]]
) -> None:
    from guessme_pipeline.remote_promote import push_promotion
    from guessme_pipeline.settings import PushTarget

    main = git(remote, "rev-parse", "main")
    result = push_promotion(PushTarget(str(remote), "main", pull_request=True), "local", candidate(2))
    assert result["proposed"] is True
    assert result["pull_request"] == "https://github.com/guessme-dev/guessme/pull/12"
    assert git(remote, "rev-parse", "main") == main
    branch = "promote/local/guessme-cnn-2"
    assert committed_uri(remote, branch) == "models:/guessme-cnn/2"
    assert git(remote, "rev-parse", f"{branch}^") == main
    (sent,) = github
    assert sent["path"] == "/repos/guessme-dev/guessme/pulls"
    assert sent["head"] == branch
    assert sent["base"] == "main"
    assert sent["auth"] == "Bearer t0ken"


def test_a_push_that_loses_a_race_is_rebuilt_on_the_new_head(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone pushes between our fetch and our push: the push is refused, we fetch and rebuild."""
    from guessme_pipeline import remote_promote
    from guessme_pipeline.settings import PushTarget

    monkeypatch.setenv("GUESSME_GIT_TOKEN", "t0ken")
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", str(remote), str(other)], check=True)
    (other / "README.md").write_text("someone else's change\n")
    git(other, "-c", "user.name=o", "-c", "user.email=o@e", "commit", "--quiet", "-am", "other")
    real_push = remote_promote.publish.push_branch
    pushes: list[str] = []

    def push_after_someone_else(repo: Path, branch: str, target: PushTarget) -> str:
        if not pushes:
            git(other, "push", "--quiet", "origin", "HEAD:main")  # lands first
        pushes.append(branch)
        return real_push(repo, branch, target)

    monkeypatch.setattr(remote_promote.publish, "push_branch", push_after_someone_else)
    result = remote_promote.push_promotion(PushTarget(str(remote), "main"), "local", candidate(3))
    assert len(pushes) == 2
    assert result["committed"] is True
    assert committed_uri(remote, "main") == "models:/guessme-cnn/3"
    assert git(remote, "rev-parse", "main^") == git(other, "rev-parse", "HEAD")  # built on their commit
    assert git(remote, "diff-tree", "--no-commit-id", "--name-only", "-r", "main") == OVERLAY
