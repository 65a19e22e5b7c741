"""Helpers for the pipeline tests: throw-away Git repositories holding an environment overlay."""

from pathlib import Path

from support.repo_snapshot import OVERLAY, committed_uri, git, init_repo, snapshot_repo

from guessme_contracts.overlay import model_env_file

__all__ = ["MODEL_ENV", "OVERLAY", "committed_uri", "git", "make_repo", "snapshot_repo"]

MODEL_ENV = (
    "# The model that environments/local serves; the pipeline's promote task edits the next line.\n"
    "MODEL_URI=models:/guessme-cnn/1\n"
)


def make_repo(path: Path, model_env: str = MODEL_ENV) -> Path:
    """A Git repository with one commit: an overlay file and an unrelated source file."""
    overlay = model_env_file(path, "local")
    overlay.parent.mkdir(parents=True)
    overlay.write_text(model_env)
    (path / "README.md").write_text("guessme\n")
    return init_repo(path)
