"""What an environment's overlay names at a branch head: what is committed, never the working tree."""

from pathlib import Path

from guessme_pipeline.git import GitError
from guessme_pipeline.promote import deployed_model


def committed_model_uri(repo: Path, env: str, branch: str | None = None) -> str | None:
    """The model URI committed in `environments/<env>/model.env` at the head of `branch` (default HEAD);
    None when the overlay names no model yet or the repository has no commit."""
    try:
        model = deployed_model(repo, env, branch)
    except GitError:
        return None
    return model.uri if model else None
