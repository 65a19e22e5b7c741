"""Git for the GitOps repository, shared by its writer (the pipeline's promotion: commits,
compare-and-swap ref updates) and its readers (the local sync, `make status`, the committed overlay):
a thin wrapper over the `git` command whose plumbing calls return stripped stdout and whose failures
raise GitError."""

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path


class GitError(RuntimeError):
    """A git command failed; the message carries the command and git's own error text."""


class RefMoved(GitError):
    """A compare-and-swap ref update lost the race: the branch moved under us."""


class Git:
    def __init__(self, repo: Path, env: Mapping[str, str] | None = None) -> None:
        self.repo = Path(repo)
        # No pager, no prompts, and no user/system config surprises in the commands we parse.
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", **(env or {})}

    def run(
        self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None, strip: bool = True
    ) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.repo,
            input=input,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            check=False,
        )
        if proc.returncode != 0:
            raise GitError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout.strip() if strip else proc.stdout

    def ok(self, *args: str) -> bool:
        try:
            self.run(*args)
        except GitError:
            return False
        return True

    def rev(self, ref: str) -> str:
        return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    def show(self, commit: str, path: str) -> str:
        return self.run("cat-file", "blob", f"{commit}:{path}", strip=False)

    def blob_at(self, commit: str, path: str) -> str | None:
        out = self.run("ls-tree", commit, "--", path)
        return out.split()[2] if out else None

    def git_dir(self) -> Path:
        return (self.repo / self.run("rev-parse", "--git-common-dir")).resolve()

    def current_branch(self) -> str | None:
        """The branch checked out in this working tree, or None when detached or bare."""
        if self.run("rev-parse", "--is-bare-repository") == "true":
            return None
        try:
            return self.run("symbolic-ref", "--quiet", "--short", "HEAD")
        except GitError:
            return None

    def update_ref_cas(self, ref: str, new: str, old: str, message: str) -> None:
        """Move `ref` from `old` to `new` atomically; RefMoved when it no longer points at `old`."""
        try:
            self.run("update-ref", "-m", message, ref, new, old)
        except GitError as exc:
            if self.rev(ref) != old:
                raise RefMoved(f"{ref} moved during the update") from exc
            raise
