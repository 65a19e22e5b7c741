"""The one overlay file that names the served model: `environments/<env>/model.env`.

It holds exactly one `MODEL_URI=models:/<name>/N` line (plus comments and blank lines); an empty
`MODEL_URI=` means no model is promoted yet. Only an immutable registry version is accepted: an alias could
move with no Git change and could not be reverted. The registered model's name is not fixed here: it
comes with the URI, from the `register` stage (params.yaml, `register.model_name`).
"""

import re
from dataclasses import dataclass

# MLflow's registered-model names as Guessme uses them: no "/" or "@" (those would read as a path or
# an alias), nothing that needs quoting in a Git branch name.
_URI = re.compile(r"models:/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)/(?P<version>[1-9][0-9]*)")
_LINE = re.compile(r"MODEL_URI=(.*)")


class OverlayError(ValueError):
    """The overlay file or a model URI is not in the expected form; the message says what is wrong."""


@dataclass(frozen=True)
class ModelRef:
    uri: str
    name: str
    version: int

    @classmethod
    def parse(cls, uri: str) -> "ModelRef":
        match = _URI.fullmatch(uri.strip())
        if match is None:
            raise OverlayError(f"model URI {uri!r} is not an immutable registry version `models:/<name>/<N>`")
        name, version = match["name"], int(match["version"])
        return cls(f"models:/{name}/{version}", name, version)


def overlay_path(env: str) -> str:
    """Repository-relative path of an environment's model file (a Git path: forward slashes)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", env):
        raise OverlayError(f"environment name {env!r} must be lower-case letters, digits and dashes")
    return f"environments/{env}/model.env"


def _uri_line_index(lines: list[str]) -> int:
    found = [i for i, line in enumerate(lines) if _LINE.fullmatch(line.strip())]
    if len(found) != 1:
        raise OverlayError(f"model.env must hold exactly one MODEL_URI= line, found {len(found)}")
    return found[0]


def read_model(text: str) -> ModelRef | None:
    """The model named by a model.env text; None when its MODEL_URI is empty (nothing promoted yet)."""
    lines = text.splitlines()
    match = _LINE.fullmatch(lines[_uri_line_index(lines)].strip())
    assert match is not None  # guaranteed by _uri_line_index
    return ModelRef.parse(match.group(1)) if match.group(1).strip() else None


def with_model(text: str, model: ModelRef) -> str:
    """`text` with only its MODEL_URI line replaced; comments, order and line endings are kept."""
    lines = text.splitlines(keepends=True)
    index = _uri_line_index([line.rstrip("\r\n") for line in lines])
    old = lines[index]
    ending = old[len(old.rstrip("\r\n")) :] or "\n"
    lines[index] = f"MODEL_URI={model.uri}{ending}"
    new = "".join(lines)
    if read_model(new) != model:  # never hand back a file that would not parse to what was asked
        raise OverlayError("internal error: rewritten model.env does not name the requested model")
    return new
