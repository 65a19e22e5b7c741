"""MLflow's REST API over plain HTTP: the one client the runtimes without MLflow use.

The serving replica (guessme_serve.registry_rest: no MLflow import, for its memory) and the Airflow
DAG (guessme_pipeline.mlflow_rest: its pins clash with MLflow's) each make a few registry calls.
This module owns what they share: where the server is (MLFLOW_TRACKING_URI, http(s) only), the
credentials MLflow's own client sends (mlflow/utils/rest_utils.py: MLFLOW_TRACKING_TOKEN as Bearer,
else MLFLOW_TRACKING_USERNAME/PASSWORD as Basic), and MLflow's error answer (`{"error_code",
"message"}`) turned into one line. Standard library only.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

API = "/api/2.0/mlflow"
TIMEOUT_S = 30.0


class RegistryError(RuntimeError):
    """An MLflow call failed; the one-line message says which and carries MLflow's answer."""

    def __init__(self, message: str, answer: str = "") -> None:
        super().__init__(message)
        self.answer = answer  # MLflow's own error, `ERROR_CODE: message`, when it sent one


class NotFound(RegistryError):
    """The server holds no such thing: HTTP 404, which MLflow sends for RESOURCE_DOES_NOT_EXIST
    (mlflow/exceptions.py ERROR_CODE_TO_HTTP_STATUS)."""


class MlflowHttp:
    """The tracking server at `base_url`, called over HTTP."""

    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None, timeout: float = TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> MlflowHttp:
        uri = env.get("MLFLOW_TRACKING_URI", "")
        if not uri.startswith(("http://", "https://")):
            raise RegistryError(f"MLFLOW_TRACKING_URI must name an MLflow server (http...), got {uri!r}")
        headers = {}
        if token := env.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {token}"
        elif env.get("MLFLOW_TRACKING_USERNAME") and env.get("MLFLOW_TRACKING_PASSWORD"):
            basic = f"{env['MLFLOW_TRACKING_USERNAME']}:{env['MLFLOW_TRACKING_PASSWORD']}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(basic).decode()
        return cls(uri, headers)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> bytes:
        """`method path` (under the server root, with query `params` and a JSON `body`); the answer's
        bytes when it is 2xx, else NotFound (404) or RegistryError with MLflow's answer."""
        url = f"{self.base_url}{urllib.parse.quote(path)}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer: bytes = response.read()
                return answer
        except urllib.error.HTTPError as exc:
            kind, answer_text = NotFound if exc.code == 404 else RegistryError, _answer(exc.read())
            raise kind(f"MLflow {method} {path} -> {exc.code}: {answer_text}", answer_text) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(f"MLflow at {self.base_url} unreachable: {reason}") from None

    def call(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One REST API call (`endpoint` under /api/2.0/mlflow/) and its JSON object answer."""
        raw = self.request(method, f"{API}/{endpoint}", params, body)
        if not raw:
            return {}
        try:
            answer = json.loads(raw)
        except ValueError:
            raise RegistryError(f"MLflow {method} {endpoint}: not JSON: {raw[:200]!r}") from None
        if not isinstance(answer, dict):
            raise RegistryError(f"MLflow {method} {endpoint}: unexpected answer {raw[:200]!r}")
        return answer


def _answer(body: bytes) -> str:
    """MLflow's error JSON as `ERROR_CODE: message`, on one line; else the start of the body."""
    try:
        error = json.loads(body)
        text = f"{error['error_code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        text = body[:200].decode(errors="replace")
    return " ".join(text.split())
