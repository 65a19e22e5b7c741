"""Throw-away Git repositories holding a snapshot of this project's files (what a clone would hold)."""

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OVERLAY = "environments/local/model.env"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def project_files() -> list[str]:
    """The files a clone of this repository holds: tracked plus not-yet-committed, minus ignored ones."""
    out = git(REPO, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return sorted({p for p in out.split("\0") if p and (REPO / p).is_file()})


def snapshot_repo(dest: Path, model_uri: str = "") -> Path:
    """A Git repository (branch main, one commit) with the project's files and `model_uri` committed."""
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    set_model_uri(dest, model_uri)
    git(dest, "init", "--quiet", "--initial-branch=main")
    git(dest, "config", "user.name", "Developer")
    git(dest, "config", "user.email", "dev@example.com")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "-m", "snapshot of the project")
    return dest


def set_model_uri(repo: Path, model_uri: str) -> None:
    """Edit the working tree's overlay file (not committed)."""
    path = repo / OVERLAY
    path.write_text(re.sub(r"(?m)^MODEL_URI=.*$", f"MODEL_URI={model_uri}", path.read_text()))


def commit_model_uri(repo: Path, model_uri: str, message: str = "deploy") -> str:
    set_model_uri(repo, model_uri)
    git(repo, "commit", "--quiet", "-m", message, "--", OVERLAY)
    return git(repo, "rev-parse", "HEAD")
