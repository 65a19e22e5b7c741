"""The DAG's registry calls through the shared plain-HTTP MLflow client (guessme_contracts.mlflow_http),
against a stand-in server: the requests they send, and how MLflow's answers come back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support.http_stub import StubHandler, serving

from guessme_pipeline import mlflow_rest

pytestmark = pytest.mark.unit


class Registry:
    """What the stand-in server was sent, and the one alias it holds."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.aliases = {("guessme-cnn", "champion"): "3"}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    held = Registry()

    class Handler(StubHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/api/2.0/mlflow/registered-models/alias":
                version = held.aliases.get((query["name"], query["alias"]))
                if version is None:  # MLflow's answer for a missing alias (404 RESOURCE_DOES_NOT_EXIST)
                    self.send_json(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no alias"})
                else:
                    self.send_json(200, {"model_version": {"name": query["name"], "version": version}})
            else:
                self.send_json(500, {"error_code": "INTERNAL_ERROR", "message": "database\nis locked"})

        def do_POST(self) -> None:
            held.posts.append((self.path, self.read_json()))
            self.send_json(200, {})

    with serving(Handler) as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        yield held


def test_alias_lookup_reads_the_version_and_a_missing_alias_is_none(registry: Registry) -> None:
    assert mlflow_rest.alias_version("guessme-cnn", "champion") == 3
    assert mlflow_rest.alias_version("guessme-cnn", "challenger") is None


def test_writes_send_json_bodies(registry: Registry) -> None:
    mlflow_rest.set_alias("guessme-cnn", "champion", 4)
    mlflow_rest.set_version_tags("guessme-cnn", 4, {"verified": "true"})
    assert registry.posts == [
        (
            "/api/2.0/mlflow/registered-models/alias",
            {"name": "guessme-cnn", "alias": "champion", "version": "4"},
        ),
        (
            "/api/2.0/mlflow/model-versions/set-tag",
            {"name": "guessme-cnn", "version": "4", "key": "verified", "value": "true"},
        ),
    ]


def test_a_server_error_is_one_line_with_mlflows_answer(registry: Registry) -> None:
    with pytest.raises(mlflow_rest.RegistryError) as failed:
        mlflow_rest.version_tags("guessme-cnn", 3)
    message = str(failed.value)
    assert (
        message == "MLflow GET /api/2.0/mlflow/model-versions/get -> 500: INTERNAL_ERROR: database is locked"
    )


def test_a_tracking_uri_that_is_not_a_server_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///tmp/mlruns")
    with pytest.raises(mlflow_rest.RegistryError, match="must name an MLflow server"):
        mlflow_rest.alias_version("guessme-cnn", "champion")
