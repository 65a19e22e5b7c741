"""The cluster tests' prediction request, offline: against a stand-in API server on loopback.

kubernetes-client/python (kubernetes/client/api/core_v1_api.py): the generated
`connect_post_namespaced_service_proxy_with_path` has no body parameter, so the kind workflow's
`pytest -m cluster` could never post a drawing through it (a ValidationError before any request).
`service_proxy.post_json` builds the API server's service proxy request (`POST /api/v1/namespaces/
{ns}/services/{name}:{port}/proxy/{path}`, Kubernetes API "proxy" subresource of a Service) with
a JSON body; here it must reach the stand-in with that path, body and credentials, and hand back
a non-2xx reply (Serve's 503 "no model") as a status rather than an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import unquote

import pytest
import service_proxy
from support.http_stub import StubHandler, serving

pytestmark = pytest.mark.manifests

client = pytest.importorskip("kubernetes.client", reason="the kubernetes client is in the ml environment")

TOKEN = "stand-in-token"


class _StandInApiServer(StubHandler):
    """Records each request; answers what the test queued (status, JSON body)."""

    seen: ClassVar[list[dict[str, Any]]] = []
    reply: ClassVar[tuple[int, object]] = (200, {})

    def do_POST(self) -> None:
        type(self).seen.append({
            "path": unquote(self.path),
            "content_type": self.headers.get("Content-Type"),
            "authorization": self.headers.get("Authorization"),
            "body": self.read_json(),
        })  # fmt: skip
        self.send_json(*type(self).reply)


@pytest.fixture
def api_client() -> Iterator[Any]:
    _StandInApiServer.seen = []
    with serving(_StandInApiServer) as url:
        config = client.Configuration(host=url)
        config.api_key = {"BearerToken": TOKEN}
        config.api_key_prefix = {"BearerToken": "Bearer"}
        yield client.ApiClient(config)


def test_post_json_through_the_service_proxy(api_client: Any) -> None:
    drawing = {"pixels": [[0.0] * 28 for _ in range(28)]}
    _StandInApiServer.reply = (200, {"digit": 1, "probabilities": [0.1] * 10})
    status, body = service_proxy.post_json(
        api_client, "guessme", "guessme-serve-serve-svc", 8000, "predict", drawing, timeout=5
    )
    assert (status, body["digit"]) == (200, 1)
    (request,) = _StandInApiServer.seen
    assert request == {
        "path": "/api/v1/namespaces/guessme/services/guessme-serve-serve-svc:8000/proxy/predict",
        "content_type": "application/json",
        "authorization": f"Bearer {TOKEN}",
        "body": drawing,
    }


def test_a_refusal_is_a_status_not_an_exception(api_client: Any) -> None:
    """Serve's 503 (no model yet) must reach the cluster test's own message, not a client exception."""
    _StandInApiServer.reply = (503, {"detail": "no model is loaded yet"})
    status, body = service_proxy.post_json(
        api_client, "guessme", "guessme-serve-serve-svc", 8000, "/predict", {"pixels": []}, timeout=5
    )
    assert (status, body) == (503, {"detail": "no model is loaded yet"})
    assert _StandInApiServer.seen[0]["path"].endswith("/services/guessme-serve-serve-svc:8000/proxy/predict")
