"""Throw-away Git repositories holding a snapshot of this project's files (what a clone would hold)."""

import re
import shutil
import subprocess
from pathlib import Path

from guessme_contracts.overlay import overlay_path

REPO = Path(__file__).resolve().parents[2]
OVERLAY = overlay_path("local")
# What tests/gitops/conftest.py's `template` repository commits in the local overlay.
TEMPLATE_URI = "models:/guessme-cnn/1"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def project_files() -> list[str]:
    """The files a clone of this repository holds: tracked plus not-yet-committed, minus ignored ones."""
    out = git(REPO, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return sorted({p for p in out.split("\0") if p and (REPO / p).is_file()})


def init_repo(path: Path, message: str = "initial") -> Path:
    """`git init` + one commit of everything in `path`, on branch main, with a repo-local identity."""
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "config", "user.name", "Developer")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", message)
    return path


def snapshot_repo(dest: Path, model_uri: str | None = "") -> Path:
    """A Git repository (branch main, one commit) with the project's files; `model_uri` (unless None)
    replaces the local overlay's URI before that commit."""
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    if model_uri is not None:
        set_model_uri(dest, model_uri)
    return init_repo(dest, "snapshot of the project")


def set_model_uri(repo: Path, model_uri: str) -> None:
    """Edit the working tree's overlay file (not committed)."""
    path = repo / OVERLAY
    path.write_text(re.sub(r"(?m)^MODEL_URI=.*$", f"MODEL_URI={model_uri}", path.read_text()))


def commit_model_uri(repo: Path, model_uri: str, message: str = "deploy") -> str:
    set_model_uri(repo, model_uri)
    git(repo, "commit", "--quiet", "-m", message, "--", OVERLAY)
    return git(repo, "rev-parse", "HEAD")


def committed_uri(repo: Path, rev: str = "HEAD") -> str:
    """The MODEL_URI value committed at `rev` of the local overlay."""
    text = git(repo, "show", f"{rev}:{OVERLAY}")
    match = re.search(r"(?m)^MODEL_URI=(.*)$", text)
    assert match is not None, f"no MODEL_URI line in {OVERLAY} at {rev}"
    return match.group(1)
