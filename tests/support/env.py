"""Environment isolation for settings tests: the developer's shell (or scripts/lib.sh) exports the very
variables a settings object reads, so a test unsets them first and sets only what it means to."""

from collections.abc import Iterable

import pytest


def unset_env(monkeypatch: pytest.MonkeyPatch, names: Iterable[str]) -> pytest.MonkeyPatch:
    """`monkeypatch` with each of `names` removed from the environment (restored after the test)."""
    for name in names:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
