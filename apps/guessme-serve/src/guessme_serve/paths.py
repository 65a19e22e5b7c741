"""Where the app finds files: an environment variable, else a path inside the repository."""

import os
from pathlib import Path

from guessme_contracts.layout import Layout


def configured_path(env_var: str, *default_parts: str) -> Path:
    """`$env_var` when set; otherwise `default_parts` under the clone's root (guessme_contracts.layout)."""
    explicit = os.environ.get(env_var)
    return Path(explicit) if explicit else Path(Layout.from_env().root, *default_parts)
