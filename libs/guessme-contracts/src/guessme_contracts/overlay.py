"""The overlay file that names the served model: `environments/<env>/model.env`, and the environments.

An environment is a folder `environments/<env>/` that holds a model.env: the names are discovered from
the folders, never listed (a shared `environments/base` has no model.env and is not an environment).

model.env is a Kustomize env file (`configMapGenerator: envs: [model.env]`): the served-model
component (platform/components/served-model) copies its `MODEL_URI` key into the RayService, the
pipeline's promotion rewrites that one line in a Git commit, and the local sync renders the same
overlay. It holds exactly one `MODEL_URI=` line, plus comments and blank lines; `MODEL_URI=` with
nothing after it means no model is promoted yet. The value is read the way Kustomize reads it (the
line's leading whitespace dropped, the value verbatim), then parsed by guessme_contracts.model_uri,
so a value that Kustomize would hand to the server with a stray space is refused here.
"""

from __future__ import annotations

import re
from pathlib import Path

from guessme_contracts.git import Git, GitError
from guessme_contracts.model_uri import ModelRef, ModelUriError

ENVIRONMENTS_DIR = "environments"
MODEL_ENV = "model.env"
MODEL_URI_KEY = "MODEL_URI"  # the ConfigMap key the served-model component reads (data.MODEL_URI)
MODEL_CONFIGMAP = "guessme-model"  # the ConfigMap each environment generates from its model.env
# An environment name: a Kubernetes label value and a Git path segment. The pattern is also what the
# DAGs' `env` form field validates with (JSON Schema `pattern`, hence the anchors).
ENV_NAME_PATTERN = "^[a-z0-9][a-z0-9-]*$"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_PREFIX = f"{MODEL_URI_KEY}="


class OverlayError(ValueError):
    """An environment name or a model.env is not in the expected form; the message says what is wrong."""


class OverlayNotCommitted(OverlayError):
    """The repository has no such ref, or the ref has no model.env for the environment."""


def check_env_name(env: str) -> str:
    if not isinstance(env, str) or not _ENV_NAME.fullmatch(env):
        raise OverlayError(f"environment name {env!r} must be lower-case letters, digits and dashes")
    return env


def overlay_path(env: str) -> str:
    """Repository-relative path of an environment's model file (a Git path: forward slashes)."""
    return f"{ENVIRONMENTS_DIR}/{check_env_name(env)}/{MODEL_ENV}"


def model_env_file(root: Path, env: str) -> Path:
    """The environment's model.env in the working tree at `root`."""
    return Path(root) / overlay_path(env)


def environments(root: Path) -> list[str]:
    """The environments of the repository at `root`, sorted: each folder `environments/*/` with a model.env.
    A folder with a model.env but a name that is not a valid environment name is an error, not skipped."""
    folder = Path(root) / ENVIRONMENTS_DIR
    if not folder.is_dir():
        return []
    found = sorted(p.parent.name for p in folder.glob(f"*/{MODEL_ENV}") if p.is_file())
    return [check_env_name(env) for env in found]


def _uri_line_index(lines: list[str]) -> int:
    found = [i for i, line in enumerate(lines) if line.lstrip().startswith(_PREFIX)]
    if len(found) != 1:
        raise OverlayError(f"{MODEL_ENV} must hold exactly one {_PREFIX} line, found {len(found)}")
    return found[0]


def read_model(text: str) -> ModelRef | None:
    """The model named by a model.env text; None when its MODEL_URI is empty (nothing promoted yet)."""
    lines = text.splitlines()
    value = lines[_uri_line_index(lines)].lstrip()[len(_PREFIX) :]
    if value == "":
        return None
    try:
        return ModelRef.parse(value)
    except ModelUriError as exc:
        raise OverlayError(f"{MODEL_ENV}: {exc}") from exc


def with_model(text: str, model: ModelRef) -> str:
    """`text` with only its MODEL_URI line replaced; comments, order and line endings are kept."""
    lines = text.splitlines(keepends=True)
    index = _uri_line_index([line.rstrip("\r\n") for line in lines])
    old = lines[index]
    ending = old[len(old.rstrip("\r\n")) :] or "\n"
    lines[index] = f"{_PREFIX}{model.uri}{ending}"
    new = "".join(lines)
    if read_model(new) != model:  # never hand back a file that would not parse to what was asked
        raise OverlayError(f"internal error: the rewritten {MODEL_ENV} does not name {model.uri}")
    return new


def committed_text(repo: Path, env: str, ref: str = "HEAD") -> str:
    """The environment's model.env as committed at `ref` (a branch, tag or commit; the working tree is
    not read). OverlayNotCommitted when the ref or the file does not exist there."""
    path = overlay_path(env)
    try:
        return Git(repo).show(ref, path)
    except GitError as exc:
        raise OverlayNotCommitted(f"{ref}:{path} is not committed in {repo}: {exc}") from exc


def committed_model_uri(repo: Path, env: str, branch: str | None = None) -> str | None:
    """The model URI committed in the environment's model.env at the head of `branch` (default HEAD);
    None when the overlay names no model yet, or the repository has no commit or no such file."""
    try:
        text = committed_text(repo, env, f"refs/heads/{branch}" if branch else "HEAD")
    except OverlayNotCommitted:
        return None
    model = read_model(text)
    return model.uri if model else None
