"""Promotion by Git commit: one-line change, idempotence, concurrency, a developer's dirty tree, revert."""

import multiprocessing
import subprocess
from pathlib import Path

import pytest
from pipeline_helpers import OVERLAY, git, make_repo

from guessme_contracts.model_uri import ModelRef
from guessme_contracts.overlay import OverlayError, read_model, with_model
from guessme_pipeline import promote as promote_module
from guessme_pipeline.promote import Candidate, PromotionError, changed_paths, promote

pytestmark = pytest.mark.unit


def candidate(version: int, accuracy: float = 0.97) -> Candidate:
    return Candidate(
        ModelRef.parse(f"models:/guessme-cnn/{version}"),
        run_id=f"run{version:04d}",
        metrics={"test_accuracy": accuracy},
    )


def committed_uri(repo: Path, rev: str = "HEAD") -> str:
    return read_model(git(repo, "show", f"{rev}:{OVERLAY}") + "\n").uri


def test_commit_changes_only_the_uri_line(repo: Path) -> None:
    before = git(repo, "rev-parse", "HEAD")
    result = promote(repo, "local", candidate(2))

    assert result.committed
    assert result.previous.uri == "models:/guessme-cnn/1"
    assert git(repo, "rev-parse", "HEAD") == result.commit
    assert git(repo, "rev-parse", "HEAD^") == before
    assert changed_paths(repo, result.commit) == [OVERLAY]
    diff = git(repo, "diff", "--unified=0", "HEAD^", "HEAD", "--", OVERLAY).splitlines()
    changes = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changes == ["-MODEL_URI=models:/guessme-cnn/1", "+MODEL_URI=models:/guessme-cnn/2"]
    message = git(repo, "log", "-1", "--format=%B")
    assert "models:/guessme-cnn/2" in message
    assert "MLflow-Run: run0002" in message
    assert "test_accuracy=0.9700" in message
    # The working tree and index follow the new HEAD: nothing left to commit, file on disk updated.
    assert git(repo, "status", "--porcelain") == ""
    assert read_model((repo / OVERLAY).read_text()).version == 2


def test_same_version_twice_makes_no_commit(repo: Path) -> None:
    first = promote(repo, "local", candidate(2))
    second = promote(repo, "local", candidate(2))
    assert first.committed
    assert not second.committed
    assert second.commit == first.commit == git(repo, "rev-parse", "HEAD")
    assert git(repo, "rev-list", "--count", "HEAD") == "2"


def test_dirty_tree_is_left_alone(repo: Path) -> None:
    (repo / "README.md").write_text("staged edit\n")
    git(repo, "add", "README.md")
    (repo / "README.md").write_text("staged edit\nplus an unstaged one\n")
    (repo / "notes.txt").write_text("untracked\n")

    result = promote(repo, "local", candidate(3))

    assert changed_paths(repo, result.commit) == [OVERLAY]
    status = sorted(git(repo, "status", "--porcelain").splitlines())
    assert status == ["?? notes.txt", "MM README.md"]
    assert git(repo, "diff", "--cached", "--name-only") == "README.md"
    assert git(repo, "show", ":README.md") == "staged edit"
    assert (repo / "README.md").read_text() == "staged edit\nplus an unstaged one\n"


def test_uncommitted_edit_of_the_overlay_is_refused(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    (repo / OVERLAY).write_text("MODEL_URI=models:/guessme-cnn/9\n")
    with pytest.raises(PromotionError, match="uncommitted changes"):
        promote(repo, "local", candidate(2))
    assert git(repo, "rev-parse", "HEAD") == head
    assert (repo / OVERLAY).read_text() == "MODEL_URI=models:/guessme-cnn/9\n"


def test_revert_restores_the_previous_model(repo: Path) -> None:
    promote(repo, "local", candidate(2))
    git(repo, "revert", "--no-edit", "HEAD")
    assert committed_uri(repo) == "models:/guessme-cnn/1"
    assert read_model((repo / OVERLAY).read_text()).version == 1


def _promote_in_process(args: tuple[str, int]) -> bool:
    repo, version = args
    return promote(Path(repo), "local", candidate(version)).committed


def test_concurrent_promotions_serialise(repo: Path) -> None:
    versions = list(range(2, 8))
    with multiprocessing.get_context("spawn").Pool(len(versions)) as pool:
        committed = pool.map(_promote_in_process, [(str(repo), v) for v in versions])
    assert all(committed)
    commits = git(repo, "rev-list", "HEAD").splitlines()
    assert len(commits) == 1 + len(versions)  # a linear history: none lost, none merged
    assert all(changed_paths(repo, c) == [OVERLAY] for c in commits[:-1])
    promoted = sorted(int(committed_uri(repo, c).rsplit("/", 1)[1]) for c in commits[:-1])
    assert promoted == versions
    assert git(repo, "status", "--porcelain") == ""


def test_lost_race_is_rebuilt_on_the_new_head(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit that lands between reading the head and moving the branch is kept, not overwritten."""
    real_build = promote_module.build_commit
    raced = []

    def build_then_someone_commits(*args: object, **kwargs: object) -> str:
        commit = real_build(*args, **kwargs)  # type: ignore[arg-type]
        if not raced:
            raced.append(True)
            (repo / "README.md").write_text("a teammate's change\n")
            git(repo, "commit", "--quiet", "-am", "teammate")
        return commit

    monkeypatch.setattr(promote_module, "build_commit", build_then_someone_commits)
    result = promote(repo, "local", candidate(2))
    assert result.committed
    assert git(repo, "log", "-1", "--format=%s", "HEAD^") == "teammate"
    assert (repo / "README.md").read_text() == "a teammate's change\n"
    assert committed_uri(repo) == "models:/guessme-cnn/2"


def test_promotes_a_branch_that_is_not_checked_out(tmp_path: Path) -> None:
    source = make_repo(tmp_path / "src")
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(source), str(bare)], check=True)
    result = promote(bare, "local", candidate(4), branch="main")
    assert result.committed
    assert committed_uri(bare, "main") == "models:/guessme-cnn/4"


def test_bad_overlays_are_refused(tmp_path: Path) -> None:
    # The URI grammar itself is tested with its parser (tests/contracts/test_model_uri.py).
    with pytest.raises(OverlayError, match="exactly one"):
        read_model("MODEL_URI=models:/guessme-cnn/1\nMODEL_URI=models:/guessme-cnn/2\n")
    bad_files = {
        "two-lines": "MODEL_URI=models:/guessme-cnn/1\nMODEL_URI=models:/guessme-cnn/2\n",
        "alias": "MODEL_URI=models:/guessme-cnn@champion\n",
    }
    for name, text in bad_files.items():
        repo = make_repo(tmp_path / name, text)
        head = git(repo, "rev-parse", "HEAD")
        with pytest.raises(OverlayError):
            promote(repo, "local", candidate(3))
        assert git(repo, "rev-parse", "HEAD") == head
    with pytest.raises(PromotionError, match="does not exist"):
        promote(repo, "prod", candidate(3))


def test_rewrite_keeps_comments_and_layout() -> None:
    text = "# served model\n\nMODEL_URI=models:/guessme-cnn/1\n# trailing note\n"
    assert with_model(text, ModelRef.parse("models:/guessme-cnn/12")) == text.replace("/1\n", "/12\n")
