"""Helpers for the pipeline tests: throw-away Git repositories holding an environment overlay."""

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OVERLAY = "environments/local/model.env"
MODEL_ENV = (
    "# The model that environments/local serves; the pipeline's promote task edits the next line.\n"
    "MODEL_URI=models:/guessme-cnn/1\n"
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _init(path: Path) -> Path:
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "config", "user.name", "Developer")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", "initial")
    return path


def make_repo(path: Path, model_env: str = MODEL_ENV) -> Path:
    """A Git repository with one commit: an overlay file and an unrelated source file."""
    (path / "environments" / "local").mkdir(parents=True)
    (path / "environments" / "local" / "model.env").write_text(model_env)
    (path / "README.md").write_text("guessme\n")
    return _init(path)


def snapshot_repo(path: Path) -> Path:
    """A Git repository with this project's files (tracked and not yet committed, minus ignored ones):
    what a clone of the project holds."""
    listed = git(REPO, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for rel in sorted({p for p in listed if p and (REPO / p).is_file()}):
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, path / rel)
    return _init(path)


def committed_uri(repo: Path, rev: str = "HEAD") -> str:
    text = git(repo, "show", f"{rev}:{OVERLAY}")
    match = re.search(r"(?m)^MODEL_URI=(.*)$", text)
    assert match is not None
    return match.group(1)
