"""Where a model came from: the data version (DVC file hashes) and the git commit of the code."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

UNKNOWN = "unknown"


def file_md5(path: Path) -> str:
    """The hash DVC records for a file output."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_commit(repo: Path = Path()) -> tuple[str, bool]:
    """(HEAD commit, whether the work tree has uncommitted changes); ("unknown", True) outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=30
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return UNKNOWN, True
    if head.returncode != 0:
        return UNKNOWN, True
    return head.stdout.strip(), bool(status.stdout.strip()) or status.returncode != 0


def data_version(files: dict[str, Path]) -> dict[str, str]:
    """MLflow tags naming the exact data: each file's md5 (the hash DVC records for a file output) and
    `data.version`, one hash over them all."""
    md5s = {name: file_md5(path) for name, path in sorted(files.items())}
    combined = hashlib.md5("".join(f"{n}={h};" for n, h in md5s.items()).encode()).hexdigest()
    return {"data.version": combined, **{f"data.md5.{name}": h for name, h in md5s.items()}}


def provenance_tags(files: dict[str, Path], repo: Path = Path()) -> dict[str, str]:
    commit, dirty = git_commit(repo)
    return {**data_version(files), "git.commit": commit, "git.dirty": str(dirty).lower()}
