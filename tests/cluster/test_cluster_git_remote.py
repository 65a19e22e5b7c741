"""The kind workflow's GitOps remote (scripts/cluster-git-remote.sh), run here without a cluster: it serves
the clone's commit with platform/ pointing at it, and the pipeline's promotion (the code the Airflow
image runs) pushes to it over smart HTTP with the token, and only with the token."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.repo_snapshot import OVERLAY, committed_uri, git, snapshot_repo

from guessme_local.procs import free_port

pytestmark = pytest.mark.integration

TOKEN = "ci-token"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    clone = snapshot_repo(tmp_path / "clone")
    env = {**os.environ, "GUESSME_GIT_TOKEN": TOKEN, "GUESSME_STATE": str(clone / ".guessme")}
    script = clone / "scripts" / "cluster-git-remote.sh"
    url = subprocess.run(
        [str(script), "start", "127.0.0.1", str(free_port())],
        cwd=clone, env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    try:
        yield clone, url
    finally:
        subprocess.run([str(script), "stop"], cwd=clone, env=env, check=False, timeout=30)


def test_the_served_commit_points_the_platform_at_the_remote(served: tuple[Path, str]) -> None:
    clone, url = served
    head = git(clone, "rev-parse", "HEAD")
    assert git(clone, "ls-remote", url, "main").split()[0] == head
    assert url in git(clone, "show", "HEAD:platform/argocd/applicationset.yaml")
    leftovers = subprocess.run(
        ["git", "grep", "-l", "https://github.com/guessme-dev/guessme.git", "HEAD", "--", "platform"],
        cwd=clone, capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    assert leftovers == ""


def test_the_promotion_pushes_with_the_token_and_only_with_it(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from guessme_contracts.model_uri import ModelRef
    from guessme_pipeline.promote import Candidate
    from guessme_pipeline.publish import PublishError
    from guessme_pipeline.remote_promote import push_promotion
    from guessme_pipeline.settings import PushTarget

    clone, url = served
    target = PushTarget(url, "main")
    candidate = Candidate(
        ModelRef.parse("models:/guessme-cnn/7"), run_id="a" * 32, metrics={"test_accuracy": 0.98}
    )
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)

    monkeypatch.setenv("GUESSME_GIT_TOKEN", "wrong-token")
    with pytest.raises(PublishError, match="rejected"):
        push_promotion(target, "local", candidate, attempts=1)

    monkeypatch.setenv("GUESSME_GIT_TOKEN", TOKEN)
    result = push_promotion(target, "local", candidate)
    assert result["committed"] is True
    fetched = tmp_path / "fetched"
    subprocess.run(["git", "clone", "--quiet", url, str(fetched)], check=True, timeout=60)
    assert committed_uri(fetched) == "models:/guessme-cnn/7"
    assert git(fetched, "rev-parse", "HEAD^") == git(clone, "rev-parse", "HEAD")
    assert git(fetched, "diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD") == OVERLAY
