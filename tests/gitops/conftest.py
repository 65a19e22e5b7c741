"""Fixtures for the tests whose local sync deploys the repository's own serve config."""

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def restore_serve_app(serve_app: Any, trained_model: Any) -> Iterator[None]:
    """The sync deploys serve-config.yaml as `make up` does, without the test-only settings (such as
    `test_client_targets`) that later tests of the shared serve app rely on: put the fixture's own
    config back afterwards."""
    yield
    serve_app.deploy(trained_model.uri)
