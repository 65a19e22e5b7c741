"""The served-model URI grammar: `models:/<name>/<N>`, an immutable MLflow registry version.

The one parser that serving (the deployment's `model_uri`), the pipeline (promotion, the gate) and
the local platform (the sync, the registry check) use. An alias (`models:/<name>@champion`) or a
run URI is refused: it could change what is served with no Git change, and could not be reverted.

The rule is exact: no surrounding whitespace (Kustomize copies a model.env value verbatim, so a
stray space would reach the server), a version from 1 without leading zeros (MLflow numbers
versions from 1), and a name as Guessme registers it: no "/" or "@" (they would read as a path or an
alias) and nothing that needs quoting in a Git branch name or a URL query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEME = "models:/"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_URI = re.compile(r"models:/(?P<name>[^/]*)/(?P<version>[^/]*)")
_VERSION = re.compile(r"[1-9][0-9]*")
FORM = "models:/<name>/<version>"


class ModelUriError(ValueError):
    """A model URI (or a name/version) is not an immutable registry version; the message says why."""


def _refuse(uri: str, why: str) -> ModelUriError:
    return ModelUriError(f"model URI {uri!r} is not an immutable registry version {FORM}: {why}")


@dataclass(frozen=True)
class ModelRef:
    """One registered model version: `ModelRef.parse("models:/guessme-cnn/3")`, or built from its parts."""

    name: str
    version: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ModelUriError(
                f"registered model name {self.name!r} must be letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ModelUriError(f"model version {self.version!r} must be an integer from 1")

    @classmethod
    def parse(cls, uri: str) -> ModelRef:
        if not isinstance(uri, str):
            raise ModelUriError(f"model URI must be a string, got {type(uri).__name__}")
        if uri != uri.strip():
            raise _refuse(uri, "remove the surrounding whitespace")
        match = _URI.fullmatch(uri)
        if match is None:
            if uri.startswith(SCHEME) and "@" in uri:
                raise _refuse(uri, "an alias can move without a Git change; name the version")
            raise _refuse(uri, f"expected {FORM} with a numeric version")
        if not _VERSION.fullmatch(match["version"]):
            raise _refuse(uri, "the version must be a number from 1, without leading zeros")
        try:
            return cls(match["name"], int(match["version"]))
        except ModelUriError as exc:
            raise _refuse(uri, str(exc)) from exc

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.name}/{self.version}"

    def __str__(self) -> str:
        return self.uri
