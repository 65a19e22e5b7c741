"""`make up`'s table of services (guessme_local.stack.services): its order, what each listens on, and
that every path in it comes from the settings (none defaulted by a module of its own)."""

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
from support.http_stub import StubHandler, serving

from guessme_contracts.model_uri import ModelUriError
from guessme_local import ray_head, stack
from guessme_local.settings import LocalSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path) -> LocalSettings:
    return LocalSettings(
        root=tmp_path / "clone",
        state=tmp_path / "state",
        serve_port=28000,
        mlflow_port=25000,
        ray_port=26380,
        dashboard_port=28265,
        airflow_port=28080,
        ray_tmpdir=tmp_path / "ray",
        airflow_home=tmp_path / "state" / "airflow",
    )


def test_started_in_dependency_order_stopped_in_reverse(settings: LocalSettings) -> None:
    sup = stack.supervisor(settings)
    assert [s.name for s in sup.services] == ["mlflow", "ray", "airflow", "sync"]
    assert {s.name: s.stop for s in sup.services}["ray"] is ray_head.stop_ray_head_pid  # never `ray stop`


def test_each_service_uses_the_settings_ports(settings: LocalSettings) -> None:
    table = {s.name: s for s in stack.services(settings)}
    assert str(table["mlflow"].health) == "http://127.0.0.1:25000/health"
    assert str(table["ray"].health) == "http://127.0.0.1:28265/api/version"
    assert str(table["airflow"].health) == "http://127.0.0.1:28080/api/v2/monitor/health"
    ray = list(table["ray"].command)
    assert ray[ray.index("--port") + 1] == "26380"
    sync = list(table["sync"].command)
    assert sync[sync.index("--serve-port") + 1] == "28000"
    # The DAG's tasks and the sync join this clone's head, never another Ray on the host.
    assert table["airflow"].env["RAY_ADDRESS"] == table["sync"].env["RAY_ADDRESS"] == "127.0.0.1:26380"


def test_every_path_is_the_clones_own(settings: LocalSettings) -> None:
    """A path outside the clone and its state folder would be a default some module made up (or one
    shared by two clones); the interpreter, PATH and HAProxy's short socket folder are the exceptions."""
    allowed = (
        str(settings.root),
        str(settings.state),
        str(settings.ray_tmpdir),
        str(Path(sys.executable).parent),
    )
    allowed += (ray_head.HAPROXY_DIR_PREFIX,)
    for service in stack.services(settings):
        values = [*service.command, *map(str, service.folders)]
        values += [v for k, v in service.env.items() if k != "PATH"]
        paths = [v.removeprefix("sqlite:///") for v in values if v.startswith(("/", "sqlite:///"))]
        assert paths, service.name
        for path in paths:
            assert path.startswith(allowed), f"{service.name}: {path} is not under the clone's folders"


class Registry(StubHandler):
    asked: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:  # http.server's name for the handler
        query = parse_qs(urlparse(self.path).query)
        Registry.asked.append(query)
        self.send_response(200 if query == {"name": ["guessme-cnn"], "version": ["3"]} else 404)
        self.end_headers()


@pytest.fixture
def registry() -> Iterator[str]:
    with serving(Registry) as url:
        yield url


def test_registry_has_asks_mlflow_for_the_uris_version(registry: str) -> None:
    assert stack.registry_has("models:/guessme-cnn/3", registry)
    assert not stack.registry_has("models:/guessme-cnn/4", registry)
    asked = len(Registry.asked)
    with pytest.raises(ModelUriError, match="alias"):  # the contracts' grammar, not a string split
        stack.registry_has("models:/guessme-cnn@champion", registry)
    assert len(Registry.asked) == asked
