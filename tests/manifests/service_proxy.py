"""POST a JSON body to a Service through the API server's service proxy (the cluster tests' path in).

The kubernetes client's generated `CoreV1Api.connect_post_namespaced_service_proxy_with_path` takes
no request body (kubernetes-client/python, kubernetes/client/api/core_v1_api.py: its parameters are
name, namespace, path, path2; a `body=` argument is refused with a ValidationError), so a prediction
cannot be posted through it. This builds the same request (`POST /api/v1/namespaces/{namespace}/
services/{name}:{port}/proxy/{path}`, the generated method's resource path and auth settings) with
the client's own `ApiClient.param_serialize` + `call_api`, which carry a body and keep the
kubeconfig's credentials and TLS settings.
"""

from __future__ import annotations

import json
from typing import Any

PROXY_PATH = "/api/v1/namespaces/{namespace}/services/{name}/proxy/{path}"


def post_json(
    api_client: Any, namespace: str, service: str, port: int, path: str, payload: object, timeout: float = 30
) -> tuple[int, Any]:
    """(HTTP status, decoded JSON reply) of POST `path` on `service:port`; any status is returned."""
    method, url, headers, body, post_params = api_client.param_serialize(
        method="POST",
        resource_path=PROXY_PATH,
        path_params={"namespace": namespace, "name": f"{service}:{port}", "path": path.lstrip("/")},
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=payload,
        auth_settings=["BearerToken"],
    )
    reply = api_client.call_api(method, url, headers, body, post_params, _request_timeout=timeout)
    reply.read()
    text = reply.data.decode() if isinstance(reply.data, bytes) else reply.data
    try:
        decoded: Any = json.loads(text)
    except ValueError:
        decoded = text  # an API server error page, say: shown as is in the failure message
    return reply.status, decoded
