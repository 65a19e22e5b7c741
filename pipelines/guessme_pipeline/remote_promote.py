"""Promotion on Kubernetes: the one-line commit goes straight to the Git remote that Argo CD watches.

There is no developer working copy in a cluster: each call fetches the remote branch into a private
bare repository (shallow), builds the promotion commit there with the same plumbing as the local path
(guessme_pipeline.promote) and pushes it fast-forward only, or, with `pull_request`, to a pull-request
branch (guessme_pipeline.publish.propose). A push that loses a race with another commit fetches again
and rebuilds. The token comes from the environment (the Airflow pods get it from a Secret); without it
the promotion is refused before anything is fetched, built or pushed.
"""

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from guessme_pipeline import publish
from guessme_pipeline.git import Git, GitError
from guessme_pipeline.overlay import ModelRef, overlay_path, read_model
from guessme_pipeline.promote import Candidate, promote
from guessme_pipeline.publish import PublishError, PushTarget

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
def remote_branch(target: PushTarget) -> Iterator[tuple[Git, str, PushTarget]]:
    """A private bare repository with the remote branch's head as refs/heads/<branch>.

    Yields (git, head, the target as that repository names it: remote `gitops`)."""
    tmp = Path(tempfile.mkdtemp(prefix="guessme-gitops-"))
    try:
        git = Git(tmp)
        git.run("init", "--quiet", "--bare")
        git.run("remote", "add", REMOTE, target.remote)
        local = dataclasses.replace(target, remote=REMOTE)
        fetch(git, local)
        yield git, git.rev(f"refs/heads/{target.branch}"), local
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(git: Git, target: PushTarget) -> None:
    spec = f"+refs/heads/{target.branch}:refs/heads/{target.branch}"
    with publish.credentials() as creds:
        try:
            git.run("fetch", "--quiet", "--depth", "1", target.remote, spec, env=creds)
        except GitError as exc:
            raise PublishError(f"cannot fetch {target.branch} from {target.remote}: {exc}") from exc


def deployed(target: PushTarget, env: str) -> tuple[ModelRef | None, str, str | None]:
    """(the model the remote branch deploys in `env`, the branch head, params.yaml at that head).
    Reading needs no token where the remote is public; a token, when there is one, is used."""
    with remote_branch(target) as (git, head, _):
        params = git.show(head, "params.yaml") if git.blob_at(head, "params.yaml") else None
        return read_model(git.show(head, overlay_path(env))), head, params


def push_promotion(target: PushTarget, env: str, candidate: Candidate, attempts: int = 3) -> dict[str, Any]:
    """Commit `candidate` into environments/<env>/model.env on the remote branch (or propose it)."""
    require_token()
    with remote_branch(target) as (git, _, local):
        if target.pull_request:
            return {**publish.propose(git.repo, env, candidate, local), "remote": target.remote}
        for attempt in range(1, attempts + 1):
            result = promote(git.repo, env, candidate, branch=target.branch)
            if not result.committed:
                return {**result.as_dict(), "pushed": None, "remote": target.remote}
            try:
                pushed = publish.push_branch(git.repo, target.branch, local)
            except PublishError:
                if attempt == attempts:
                    raise
                fetch(git, local)  # the branch moved on the remote: rebuild on its new head
                continue
            return {**result.as_dict(), "pushed": pushed, "remote": target.remote}
    raise AssertionError("unreachable")
