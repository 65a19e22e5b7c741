"""The served-model URI grammar: one parser, the strict rule (immutable versions, the exact text)."""

import pytest

from guessme_contracts.model_uri import ModelRef, ModelUriError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("uri", "name", "version"),
    [
        ("models:/guessme-cnn/12", "guessme-cnn", 12),
        ("models:/digits.v2_b/1", "digits.v2_b", 1),
        ("models:/7/100", "7", 100),
    ],
)
def test_a_registry_version_parses_and_prints_back(uri: str, name: str, version: int) -> None:
    ref = ModelRef.parse(uri)
    assert (ref.name, ref.version) == (name, version)
    assert ref.uri == str(ref) == uri
    assert ref == ModelRef(name, version)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("models:/guessme-cnn@champion", "alias"),
        ("models:/guessme-cnn/champion", "number"),
        ("models:/guessme-cnn/latest", "number"),
        ("models:/guessme-cnn/0", "from 1"),
        ("models:/guessme-cnn/007", "leading zeros"),
        ("models:/guessme-cnn/-3", "number"),
        ("models:/guessme-cnn/3.0", "number"),
        ("models:/team/guessme-cnn/3", "numeric version"),
        ("models:/guessme-cnn/", "number"),
        ("models://3", "name"),
        ("models:/-cnn/3", "name"),
        ("models:/gue ssme/3", "name"),
        ("models:/guessme%2Fcnn/3", "name"),
        ("runs:/abc/model", "numeric version"),
        ("models:/guessme-cnn/3?x=1", "number"),
        (" models:/guessme-cnn/3", "whitespace"),
        ("models:/guessme-cnn/3\n", "whitespace"),
        ("", "numeric version"),
    ],
)
def test_anything_else_is_refused_with_the_reason(bad: str, why: str) -> None:
    with pytest.raises(ModelUriError, match="immutable registry version models:/<name>/<version>") as err:
        ModelRef.parse(bad)
    assert why in str(err.value)
    assert isinstance(err.value, ValueError)  # callers that catch ValueError keep working


def test_the_parts_are_checked_when_built_directly() -> None:
    for name, version in (("guessme/cnn", 1), ("guessme@x", 1), ("", 1), ("ok", 0), ("ok", True)):
        with pytest.raises(ModelUriError):
            ModelRef(name, version)
    with pytest.raises(ModelUriError, match="must be a string"):
        ModelRef.parse(3)  # type: ignore[arg-type]


def test_the_value_is_frozen_and_hashable() -> None:
    ref = ModelRef.parse("models:/guessme-cnn/3")
    with pytest.raises(AttributeError):
        ref.version = 4  # type: ignore[misc]
    assert {ref, ModelRef("guessme-cnn", 3)} == {ref}
