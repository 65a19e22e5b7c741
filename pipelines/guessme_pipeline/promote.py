"""Promotion by Git commit: write an immutable model URI into `environments/<env>/model.env` and commit it.

The commit is built with plumbing (blob -> tree -> commit) on top of the branch head and the branch is
moved with a compare-and-swap, so:
- only the overlay file changes, whatever else a developer has staged or modified;
- concurrent promotions serialise (a file lock in the Git directory, then CAS; a lost race retries);
- the committed file is always one that parses (it is validated before the commit is written);
- promoting the version the branch already deploys makes no commit.
Rollback is `git revert <promotion commit>`.
"""

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from guessme_contracts.git import Git, GitError, RefMoved
from guessme_contracts.model_uri import ModelRef
from guessme_contracts.overlay import overlay_path, read_model, with_model

# The pipeline commits as a bot unless the caller's environment names an author.
BOT_IDENTITY = {
    "GIT_AUTHOR_NAME": "guessme-pipeline",
    "GIT_AUTHOR_EMAIL": "pipeline@guessme.local",
    "GIT_COMMITTER_NAME": "guessme-pipeline",
    "GIT_COMMITTER_EMAIL": "pipeline@guessme.local",
}


class PromotionError(RuntimeError):
    """Promotion was refused or failed; the overlay on the branch is unchanged."""


Declined = TypeVar("Declined")


@dataclass(frozen=True)
class Candidate:
    model: ModelRef
    run_id: str
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PromotionResult:
    committed: bool
    commit: str  # the commit whose overlay deploys the candidate (new, or the head that already did)
    branch: str
    previous: ModelRef | None
    env: str

    def as_dict(self) -> dict[str, object]:
        return {
            "committed": self.committed,
            "commit": self.commit,
            "branch": self.branch,
            "previous_uri": self.previous.uri if self.previous else None,
            "env": self.env,
        }


def commit_message(env: str, candidate: Candidate, previous: ModelRef | None) -> str:
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(candidate.metrics.items()))
    return (
        f"deploy({env}): {candidate.model.uri}\n\n"
        f"Promote {candidate.model.uri} (was {previous.uri if previous else 'none'}) "
        f"in environments/{env}/model.env.\n\n"
        f"Model-Version: {candidate.model.version}\n"
        f"MLflow-Run: {candidate.run_id}\n"
        f"Metrics: {metrics or 'none'}\n"
        f"Metrics-JSON: {json.dumps(dict(sorted(candidate.metrics.items())))}\n"
    )


@contextlib.contextmanager
def repo_lock(git: Git, timeout: float) -> Iterator[None]:
    """An exclusive lock shared by every promotion into this repository (all worktrees, all processes)."""
    path = git.git_dir() / "guessme-promote.lock"
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PromotionError(f"another promotion held {path} for over {timeout:.0f} s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_commit(git: Git, base: str, path: str, text: str, message: str) -> str:
    """A commit on `base` whose tree differs only in `path` (written to the object store, no ref moved)."""
    blob = git.run("hash-object", "-w", "--stdin", "--path", path, input=text)
    with tempfile.TemporaryDirectory(prefix="guessme-promote-") as tmp:
        # A private index: the developer's index (and whatever they staged) is never touched here.
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git.run("read-tree", base, env=index)
        git.run("update-index", "--cacheinfo", f"100644,{blob},{path}", env=index)
        tree = git.run("write-tree", env=index)
    identity = {k: os.environ.get(k) or v for k, v in BOT_IDENTITY.items()}
    return git.run("commit-tree", tree, "-p", base, "-F", "-", input=message, env=identity)


def _check_worktree_clean(git: Git, path: str, committed_text: str) -> None:
    """Refuse when the developer has their own uncommitted edit of the overlay file itself."""
    worktree_file = git.repo / path
    on_disk = worktree_file.read_text() if worktree_file.exists() else None
    staged = git.run("ls-files", "--stage", "--", path).split()
    committed_blob = git.run("hash-object", "--stdin", "--path", path, input=committed_text)
    if on_disk != committed_text or (staged and staged[1] != committed_blob):
        raise PromotionError(
            f"{path} has uncommitted changes in {git.repo}; commit or discard them before promoting"
        )


def _sync_worktree(git: Git, path: str, text: str) -> None:
    """Make the checked-out file and its index entry match the new HEAD, leaving every other path alone."""
    target = git.repo / path
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".model.env.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)  # atomic: a reader sees the old file or the new one, never half of one
    blob = git.run("hash-object", "-w", "--stdin", "--path", path, input=text)
    git.run("update-index", "--cacheinfo", f"100644,{blob},{path}")


@dataclass(frozen=True)
class OverlayEdit:
    """One change of an overlay file on a branch head: its text there, its new text, the commit message."""

    current: str
    new: str
    message: str
    reflog: str


@dataclass(frozen=True)
class Committed:
    commit: str
    edit: OverlayEdit


def target_branch(git: Git, branch: str | None, action: str) -> str:
    """`branch`, else the checked-out one; `action` ("promote", "roll back") names what needs it."""
    branch = branch or git.current_branch()
    if not branch:
        raise PromotionError(f"{git.repo} has no checked-out branch; name the branch to {action} on")
    return branch


def commit_overlay_edit(
    git: Git,
    branch: str,
    path: str,
    plan: Callable[[str], OverlayEdit | Declined],
    lock_timeout: float,
    attempts: int,
) -> Committed | Declined:
    """Commit `plan(head)`'s edit of `path` on `branch`, or return what `plan` gave instead of an edit.

    The one write path of promotion and rollback: under the repository's lock, the commit is built on
    the branch head (only `path` differs) and the branch moved by compare-and-swap; when someone else
    moved it first, `plan` runs again on the new head. A checked-out branch's file and index entry follow,
    unless the developer has their own uncommitted edit of that file (then nothing is committed)."""
    ref = f"refs/heads/{branch}"
    with repo_lock(git, lock_timeout):
        for _ in range(attempts):
            head = git.rev(ref)
            edit = plan(head)
            if not isinstance(edit, OverlayEdit):
                return edit
            checked_out = git.current_branch() == branch
            if checked_out:
                _check_worktree_clean(git, path, edit.current)
            commit = build_commit(git, head, path, edit.new, edit.message)
            try:
                git.update_ref_cas(ref, commit, head, edit.reflog)
            except RefMoved:
                continue  # someone else committed first (outside our lock): plan again on the new head
            if checked_out:
                _sync_worktree(git, path, edit.new)
            return Committed(commit, edit)
    raise PromotionError(f"{ref} kept moving; gave up after {attempts} attempts")


def promote(
    repo: Path,
    env: str,
    candidate: Candidate,
    branch: str | None = None,
    lock_timeout: float = 120.0,
    attempts: int = 5,
) -> PromotionResult:
    """Commit `candidate` as the model of `env` on `branch` (default: the checked-out branch)."""
    git = Git(repo)
    path = overlay_path(env)
    branch = target_branch(git, branch, "promote")

    def plan(head: str) -> OverlayEdit | PromotionResult:
        if git.blob_at(head, path) is None:
            raise PromotionError(f"{path} does not exist on {branch} ({head[:12]})")
        committed = git.show(head, path)
        previous = read_model(committed)
        if previous == candidate.model:
            return PromotionResult(False, head, branch, previous, env)
        message = commit_message(env, candidate, previous)
        return OverlayEdit(
            committed, with_model(committed, candidate.model), message, f"promote {candidate.model.uri}"
        )

    done = commit_overlay_edit(git, branch, path, plan, lock_timeout, attempts)
    if isinstance(done, PromotionResult):
        return done
    return PromotionResult(True, done.commit, branch, read_model(done.edit.current), env)


def deployed_model(repo: Path, env: str, branch: str | None = None) -> ModelRef | None:
    """The model the overlay names at the head of `branch` (default: the checked-out branch), as committed."""
    git = Git(repo)
    head = git.rev(f"refs/heads/{branch}" if branch else "HEAD")
    return read_model(git.show(head, overlay_path(env)))


def changed_paths(repo: Path, commit: str) -> list[str]:
    """Paths a commit changes relative to its first parent (used by callers and tests to audit)."""
    try:
        out = Git(repo).run("diff-tree", "--no-commit-id", "--name-only", "-r", f"{commit}^", commit)
    except GitError as exc:
        raise PromotionError(f"cannot inspect {commit}: {exc}") from exc
    return out.splitlines()
