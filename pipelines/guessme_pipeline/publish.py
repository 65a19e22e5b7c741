"""Optional: publish a promotion to a remote, directly or as a pull request.

- push: the promoted branch goes to `remote` (fast-forward only: the remote's own compare-and-swap; a
  rejected push fails with the reason and the next run pushes again, since pushing is idempotent).
- pull request: the promotion commit is built on the remote's base branch (no local branch moves: the
  environment changes when the pull request is merged), pushed to `promote/<env>/<model name>-<N>`, and a
  pull request is opened through the GitHub REST API.

Credentials come only from the environment (GUESSME_GIT_TOKEN, else GITHUB_TOKEN), handed to git by an
askpass helper for this one command: never written into a URL, the Git config or a commit.
"""

import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from guessme_contracts.git import Git, GitError
from guessme_contracts.overlay import overlay_path, read_model, with_model
from guessme_pipeline.promote import Candidate, build_commit, commit_message, repo_lock
from guessme_pipeline.settings import PipelineSettings, PushTarget

ASKPASS = (
    '#!/bin/sh\ncase "$1" in Username*) echo x-access-token ;; *) echo "$GUESSME_ASKPASS_TOKEN" ;; esac\n'
)


class PublishError(RuntimeError):
    """Pushing or opening the pull request failed; the message says why."""


def token() -> str | None:
    secret = PipelineSettings().git_token
    return secret.get_secret_value() if secret else None


@contextmanager
def credentials() -> Iterator[dict[str, str]]:
    """Environment for one git command: the token through GIT_ASKPASS, when there is one."""
    secret = token()
    if not secret:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="guessme-askpass-") as tmp:
        helper = Path(tmp) / "askpass.sh"
        helper.write_text(ASKPASS)
        helper.chmod(stat.S_IRWXU)
        yield {"GIT_ASKPASS": str(helper), "GUESSME_ASKPASS_TOKEN": secret}


def push_branch(repo: Path, local_branch: str, target: PushTarget) -> str:
    """Push `local_branch` to `target.branch` (fast-forward only); returns the pushed commit."""
    git = Git(repo)
    commit = git.rev(f"refs/heads/{local_branch}")
    with credentials() as env:
        try:
            git.run("push", "--porcelain", target.remote, f"{commit}:refs/heads/{target.branch}", env=env)
        except GitError as exc:
            raise PublishError(f"push to {target.remote}/{target.branch} rejected: {exc}") from exc
    return commit


def propose(repo: Path, env: str, candidate: Candidate, target: PushTarget) -> dict[str, object]:
    """Build the promotion on the remote's base branch and push it to a pull-request branch."""
    git = Git(repo)
    path = overlay_path(env)
    head_branch = f"promote/{env}/{candidate.model.name}-{candidate.model.version}"
    with repo_lock(git, 120.0), credentials() as creds:
        try:
            git.run("fetch", "--quiet", target.remote, f"refs/heads/{target.branch}", env=creds)
        except GitError as exc:
            raise PublishError(f"cannot fetch {target.remote}/{target.branch}: {exc}") from exc
        base = git.rev("FETCH_HEAD")
        committed = git.show(base, path)
        previous = read_model(committed)
        if previous == candidate.model:
            return {"proposed": False, "reason": f"{target.branch} already deploys {candidate.model.uri}"}
        message = commit_message(env, candidate, previous)
        commit = build_commit(git, base, path, with_model(committed, candidate.model), message)
        try:
            git.run(
                "push",
                "--porcelain",
                "--force",
                target.remote,
                f"{commit}:refs/heads/{head_branch}",
                env=creds,
            )
        except GitError as exc:
            raise PublishError(f"push of {head_branch} rejected: {exc}") from exc
    url = open_pull_request(git, target, head_branch, message) if token() else None
    return {"proposed": True, "branch": head_branch, "commit": commit, "pull_request": url}


def github_slug(remote_url: str) -> str:
    match = re.search(r"github\.com[:/]([^/]+/[^/]+?)(?:\.git)?/?$", remote_url)
    if not match:
        raise PublishError(f"cannot tell the GitHub repository from {remote_url!r}; set GUESSME_GITHUB_REPO")
    return match.group(1)


def open_pull_request(git: Git, target: PushTarget, head_branch: str, message: str) -> str:
    """Open (or find the already open) pull request; returns its URL."""
    import httpx

    settings = PipelineSettings()
    slug = settings.github_repo or github_slug(git.run("remote", "get-url", target.remote))
    api = settings.github_api_url.rstrip("/")
    headers = {"Authorization": f"Bearer {token()}", "Accept": "application/vnd.github+json"}
    title, _, details = message.partition("\n\n")
    body = {"title": title, "head": head_branch, "base": target.branch, "body": details}
    with httpx.Client(timeout=30) as client:
        r = client.post(f"{api}/repos/{slug}/pulls", json=body, headers=headers)
        if r.status_code == 422 and "already exists" in r.text:
            owner = slug.split("/")[0]
            found = client.get(
                f"{api}/repos/{slug}/pulls", params={"head": f"{owner}:{head_branch}"}, headers=headers
            )
            if found.is_success and found.json():
                return str(found.json()[0]["html_url"])
        if not r.is_success:
            raise PublishError(f"GitHub refused the pull request: HTTP {r.status_code}: {r.text[:500]}")
        return str(r.json()["html_url"])
