"""Publishing a promotion: a fast-forward push to a remote, or a pull-request branch built on the remote."""

import subprocess
from pathlib import Path

import pytest
from pipeline_helpers import OVERLAY, committed_uri, git, make_repo

from guessme_contracts.model_uri import ModelRef
from guessme_pipeline.promote import Candidate, promote
from guessme_pipeline.publish import PublishError, credentials, github_slug, propose, push_branch
from guessme_pipeline.settings import PushTarget

pytestmark = pytest.mark.unit


def candidate(version: int) -> Candidate:
    model = ModelRef.parse(f"models:/guessme-cnn/{version}")
    return Candidate(model, run_id="r" * 32, metrics={"test_accuracy": 0.98})


@pytest.fixture
def remote_and_clone(tmp_path: Path) -> tuple[Path, Path]:
    source = make_repo(tmp_path / "source")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(source), str(remote))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(remote), str(clone))
    return remote, clone


def test_push_publishes_the_promotion_and_is_idempotent(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    target = PushTarget(remote="origin", branch="main")
    result = promote(clone, "local", candidate(2))
    assert push_branch(clone, "main", target) == result.commit
    assert committed_uri(remote, "main") == "models:/guessme-cnn/2"
    assert push_branch(clone, "main", target) == result.commit  # nothing new: still fine


def test_push_is_refused_when_the_remote_moved(remote_and_clone: tuple[Path, Path], tmp_path: Path) -> None:
    remote, clone = remote_and_clone
    other = tmp_path / "teammate"
    git(tmp_path, "clone", "--quiet", str(remote), str(other))
    promote(other, "local", candidate(3))
    git(other, "push", "--quiet", "origin", "main")
    promote(clone, "local", candidate(2))
    with pytest.raises(PublishError, match="rejected"):
        push_branch(clone, "main", PushTarget(remote="origin", branch="main"))
    assert committed_uri(remote, "main") == "models:/guessme-cnn/3"  # the remote keeps the teammate's


def test_pull_request_branch_is_built_on_the_remote_base(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    local_head = git(clone, "rev-parse", "HEAD")
    target = PushTarget(remote="origin", branch="main", pull_request=True)
    proposal = propose(clone, "local", candidate(5), target)
    assert proposal["proposed"] is True
    assert proposal["branch"] == "promote/local/guessme-cnn-5"
    assert proposal["pull_request"] is None  # no token in the environment: no API call
    assert committed_uri(remote, "promote/local/guessme-cnn-5") == "models:/guessme-cnn/5"
    assert committed_uri(remote, "main") == "models:/guessme-cnn/1"  # deployed only once merged
    changed = git(remote, "diff", "--name-only", "main", "promote/local/guessme-cnn-5")
    assert changed == OVERLAY
    assert git(clone, "rev-parse", "HEAD") == local_head  # no local branch moved
    git(remote, "update-ref", "refs/heads/main", "refs/heads/promote/local/guessme-cnn-5")  # "merge"
    assert propose(clone, "local", candidate(5), target)["proposed"] is False


def test_token_reaches_git_only_through_askpass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUESSME_GIT_TOKEN", "s3cret")
    with credentials() as env:
        helper = env["GIT_ASKPASS"]
        run_env = {"GUESSME_ASKPASS_TOKEN": env["GUESSME_ASKPASS_TOKEN"], "PATH": "/usr/bin:/bin"}
        ask = [helper, "Password for 'https://github.com': "]
        assert subprocess.run(ask, env=run_env, capture_output=True, text=True).stdout.strip() == "s3cret"
        ask = [helper, "Username for 'https://github.com': "]
        user = subprocess.run(ask, env=run_env, capture_output=True, text=True).stdout.strip()
        assert user == "x-access-token"
        assert "s3cret" not in Path(helper).read_text()
    assert not Path(helper).exists()


def test_github_slug() -> None:
    assert github_slug("git@github.com:acme/guessme.git") == "acme/guessme"
    assert github_slug("https://github.com/acme/guessme") == "acme/guessme"
    with pytest.raises(PublishError):
        github_slug("/srv/git/guessme.git")
