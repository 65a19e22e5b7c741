"""Rollback by commit: exactly what `git revert <promotion>` makes, idempotent, locked, and never a revert
of anything but that one promotion."""

from pathlib import Path

import pytest
from support.repo_snapshot import OVERLAY, committed_uri, git, init_repo

from guessme_contracts.git import Git
from guessme_contracts.model_uri import ModelRef
from guessme_pipeline.promote import Candidate, PromotionError, changed_paths, promote, repo_lock
from guessme_pipeline.rollback import revert_promotion

pytestmark = pytest.mark.unit

REASON = "verification failed: models:/guessme-cnn/2 is Degraded: load error: boom"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    (path / "environments" / "local").mkdir(parents=True)
    (path / OVERLAY).write_text("# served model\nMODEL_URI=models:/guessme-cnn/1\n")
    (path / "README.md").write_text("guessme\n")
    return init_repo(path)


def promote_version(repo: Path, version: int) -> str:
    model = ModelRef.parse(f"models:/guessme-cnn/{version}")
    result = promote(repo, "local", Candidate(model, f"run{version}"))
    assert result.committed
    return result.commit


def test_the_revert_is_git_reverts_commit_with_the_reason(repo: Path, tmp_path: Path) -> None:
    promotion = promote_version(repo, 2)
    result = revert_promotion(repo, "local", promotion, REASON)
    assert result.committed
    assert git(repo, "rev-parse", "HEAD") == result.commit
    assert committed_uri(repo) == "models:/guessme-cnn/1"
    assert changed_paths(repo, result.commit) == [OVERLAY]
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith('Revert "deploy(local): models:/guessme-cnn/2"')
    assert f"This reverts commit {promotion}." in message
    assert f"Reason: {REASON}" in message
    # The same tree as the porcelain's own revert of that commit (in a clone, on the same parent).
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(repo), str(clone))
    git(clone, "config", "user.name", "t")
    git(clone, "config", "user.email", "t@example.com")
    git(clone, "reset", "--quiet", "--hard", promotion)
    git(clone, "revert", "--no-edit", promotion)
    assert git(clone, "rev-parse", "HEAD^{tree}") == git(repo, "rev-parse", "HEAD^{tree}")
    # The developer's checkout follows (the overlay file and its index entry), nothing else moves.
    assert git(repo, "status", "--porcelain") == ""


def test_reverting_twice_commits_once(repo: Path) -> None:
    promotion = promote_version(repo, 2)
    first = revert_promotion(repo, "local", promotion, REASON)
    second = revert_promotion(repo, "local", promotion, REASON)
    assert first.committed
    assert not second.committed
    assert "already reverted" in second.detail
    assert git(repo, "rev-list", "--count", "HEAD") == "3"


def test_a_superseded_promotion_is_left_alone(repo: Path) -> None:
    promotion = promote_version(repo, 2)
    promote_version(repo, 3)
    result = revert_promotion(repo, "local", promotion, REASON)
    assert not result.committed
    assert "superseded" in result.detail
    assert committed_uri(repo) == "models:/guessme-cnn/3"


def test_only_a_promotion_commit_is_reverted(repo: Path) -> None:
    (repo / "README.md").write_text("docs\n")
    git(repo, "commit", "--quiet", "-am", "docs")
    with pytest.raises(PromotionError, match="not a promotion"):
        revert_promotion(repo, "local", "HEAD", REASON)


def test_the_developers_other_work_is_untouched(repo: Path) -> None:
    promotion = promote_version(repo, 2)
    (repo / "README.md").write_text("work in progress\n")
    (repo / "notes.txt").write_text("staged\n")
    git(repo, "add", "notes.txt")
    revert_promotion(repo, "local", promotion, REASON)
    assert (repo / "README.md").read_text() == "work in progress\n"
    assert git(repo, "diff", "--cached", "--name-only") == "notes.txt"  # still staged, alone
    assert git(repo, "diff", "--name-only") == "README.md"  # still modified, not staged


def test_it_waits_for_the_promotion_lock(repo: Path) -> None:
    promotion = promote_version(repo, 2)
    with repo_lock(Git(repo), timeout=1), pytest.raises(PromotionError, match="another promotion held"):
        revert_promotion(repo, "local", promotion, REASON, lock_timeout=0.3)
    assert committed_uri(repo) == "models:/guessme-cnn/2"


def test_a_concurrent_commit_is_not_lost(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The branch moves between reading the head and the compare-and-swap: the revert is rebuilt on top."""
    promotion = promote_version(repo, 2)
    real = Git.update_ref_cas
    moved = []

    def racing(self: Git, ref: str, new: str, old: str, message: str) -> None:
        if not moved:  # someone else commits an unrelated file first
            moved.append(True)
            git(repo, "commit", "--quiet", "--allow-empty", "-m", "other")
        real(self, ref, new, old, message)

    monkeypatch.setattr(Git, "update_ref_cas", racing)
    result = revert_promotion(repo, "local", promotion, REASON)
    assert result.committed
    assert git(repo, "log", "-3", "--format=%s").splitlines()[1] == "other"
    assert committed_uri(repo) == "models:/guessme-cnn/1"
