"""Where the app finds files: an environment variable, else a path inside the repository."""

import os
from pathlib import Path


def configured_path(env_var: str, *default_parts: str) -> Path:
    """`$env_var` when set; otherwise `default_parts` under GUESSME_ROOT (default: this checkout)."""
    explicit = os.environ.get(env_var)
    if explicit:
        return Path(explicit)
    root = os.environ.get("GUESSME_ROOT") or Path(__file__).resolve().parents[4]
    return Path(root, *default_parts)
