"""Promotion on Kubernetes: the one-line commit goes straight to the Git remote that Argo CD watches.

There is no developer working copy in a cluster: each call fetches the remote branch into a private
bare repository (shallow), builds the promotion commit there with the same plumbing as the local path
(guessme_pipeline.promote) and pushes it fast-forward only, or, with `pull_request`, to a pull-request
branch (guessme_pipeline.publish.propose). A push that loses a race with another commit fetches again
and rebuilds. A rollback (`push_revert`) is pushed the same way: the branch's whole history is fetched
for it, since the revert checks that the promotion is on the branch and reverts it against its parent.
The token comes from the environment (the Airflow pods get it from a Secret); without it
the promotion is refused before anything is fetched, built or pushed.
"""

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from guessme_contracts.git import Git, GitError
from guessme_contracts.model_uri import ModelRef
from guessme_contracts.overlay import overlay_path, read_model
from guessme_pipeline import publish
from guessme_pipeline.promote import Candidate, promote
from guessme_pipeline.publish import PublishError
from guessme_pipeline.rollback import revert_promotion
from guessme_pipeline.settings import PushTarget

TOKEN_SECRET = "guessme-git-token"  # in the Airflow namespace, key `token` (docs/deploy.md)
REMOTE = "gitops"  # the remote's name in the private repository (a pull request reads its URL)


class MissingToken(PublishError):
    """No Git token in the environment: the promotion cannot be pushed, so none is made."""


def require_token() -> str:
    secret = publish.token()
    if not secret:
        raise MissingToken(
            "no Git token: GUESSME_GIT_TOKEN (or GITHUB_TOKEN) is empty, so the promotion cannot be pushed "
            f"to the remote Argo CD watches. Create the Secret {TOKEN_SECRET} (key `token`) in Airflow's "
            "namespace (docs/deploy.md); nothing was committed."
        )
    return secret


@contextmanager
def private_repo(target: PushTarget) -> Iterator[tuple[Git, PushTarget]]:
    """An empty private bare repository whose remote `gitops` is the target's remote."""
    tmp = Path(tempfile.mkdtemp(prefix="guessme-gitops-"))
    try:
        git = Git(tmp)
        git.run("init", "--quiet", "--bare")
        git.run("remote", "add", REMOTE, target.remote)
        yield git, dataclasses.replace(target, remote=REMOTE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def remote_branch(target: PushTarget, depth: int | None = 1) -> Iterator[tuple[Git, str, PushTarget]]:
    """A private bare repository with the remote branch's head as refs/heads/<branch> (and `depth`
    commits of its history; None: all of it).

    Yields (git, head, the target as that repository names it: remote `gitops`)."""
    with private_repo(target) as (git, local):
        fetch(git, local, depth)
        yield git, git.rev(f"refs/heads/{target.branch}"), local


def fetch(git: Git, target: PushTarget, depth: int | None = 1) -> None:
    spec = f"+refs/heads/{target.branch}:refs/heads/{target.branch}"
    shallow = ["--depth", str(depth)] if depth else []
    with publish.credentials() as creds:
        try:
            git.run("fetch", "--quiet", *shallow, target.remote, spec, env=creds)
        except GitError as exc:
            raise PublishError(f"cannot fetch {target.branch} from {target.remote}: {exc}") from exc


def file_at(target: PushTarget, commit: str, path: str) -> str | None:
    """`path` at `commit` of the remote (fetched by its id: the branch may have moved on since)."""
    with private_repo(target) as (git, local):
        with publish.credentials() as creds:
            try:
                git.run("fetch", "--quiet", "--depth", "1", local.remote, commit, env=creds)
            except GitError as exc:
                raise PublishError(f"cannot fetch {commit[:12]} from {target.remote}: {exc}") from exc
        return git.show(commit, path) if git.blob_at(commit, path) else None


def deployed(target: PushTarget, env: str) -> tuple[ModelRef | None, str, str | None]:
    """(the model the remote branch deploys in `env`, the branch head, params.yaml at that head).
    Reading needs no token where the remote is public; a token, when there is one, is used."""
    with remote_branch(target) as (git, head, _):
        params = git.show(head, "params.yaml") if git.blob_at(head, "params.yaml") else None
        return read_model(git.show(head, overlay_path(env))), head, params


class _BranchCommit(Protocol):
    """A promotion's or a revert's result: whether it committed, and what to report."""

    @property
    def committed(self) -> bool: ...

    def as_dict(self) -> dict[str, object]: ...


def _commit_and_push(
    git: Git,
    target: PushTarget,
    local: PushTarget,
    commit: Callable[[], _BranchCommit],
    attempts: int,
    depth: int | None,
) -> dict[str, Any]:
    """`commit()` on the private copy of the branch, then push it fast-forward; when the remote branch
    moved meanwhile, fetch it again (`depth` commits) and commit anew, up to `attempts` times."""
    for attempt in range(1, attempts + 1):
        result = commit()
        if not result.committed:
            return {**result.as_dict(), "pushed": None, "remote": target.remote}
        try:
            pushed = publish.push_branch(git.repo, target.branch, local)
        except PublishError:
            if attempt == attempts:
                raise
            fetch(git, local, depth)  # the branch moved on the remote: rebuild on its new head
            continue
        return {**result.as_dict(), "pushed": pushed, "remote": target.remote}
    raise ValueError(f"attempts must be >= 1, got {attempts}")


def push_promotion(target: PushTarget, env: str, candidate: Candidate, attempts: int = 3) -> dict[str, Any]:
    """Commit `candidate` into environments/<env>/model.env on the remote branch (or propose it)."""
    require_token()
    with remote_branch(target) as (git, _, local):
        if target.pull_request:
            return {**publish.propose(git.repo, env, candidate, local), "remote": target.remote}
        return _commit_and_push(
            git,
            target,
            local,
            lambda: promote(git.repo, env, candidate, branch=target.branch),
            attempts,
            depth=1,
        )


def push_revert(
    target: PushTarget, env: str, promotion: str, reason: str, attempts: int = 3
) -> dict[str, Any]:
    """Revert the promotion commit `promotion` on the remote branch (guessme_pipeline.rollback: that
    commit only, idempotent) and push the revert fast-forward; a lost race fetches and retries."""
    require_token()
    with remote_branch(target, depth=None) as (git, _, local):
        return _commit_and_push(
            git,
            target,
            local,
            lambda: revert_promotion(git.repo, env, promotion, reason, branch=target.branch),
            attempts,
            depth=None,
        )
