"""What a replica reads from the MLflow registry, over MLflow's REST API: no MLflow import.

A version's record (`model-versions/get`), where its artifacts live (`model-versions/get-download-uri`),
its run's metrics (`runs/get`), and one file of its artifacts through the tracking server's artifact
proxy. Both servers run with `--artifacts-destination` and no `--default-artifact-root`
(localdev/guessme_local/mlflow_server.py, platform/mlflow/mlflow.yaml), so new experiments' artifacts
live under `mlflow-artifacts:/` (MLflow 3.17 mlflow/utils/server_cli_utils.py
`resolve_default_artifact_root`) and `mlflow-artifacts:/<path>` is served at
`<tracking URI>/api/2.0/mlflow-artifacts/artifacts/<path>`, as MLflow's own client resolves it
(mlflow/store/artifact/mlflow_artifacts_repo.py `resolve_uri`); a missing file is a 404. Each read is
one small HTTP request, so a replica learns a version in milliseconds. Artifacts anywhere else
(`runs:/`, `s3://`, a proxy on another host) are not read here: the caller falls back to MLflow.

Credentials: MLFLOW_TRACKING_TOKEN (Bearer) or MLFLOW_TRACKING_USERNAME/PASSWORD (Basic), the
environment variables MLflow's client itself sends (mlflow/utils/rest_utils.py); MLflow's other auth
plugins are not supported here.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from guessme_contracts.model_uri import ModelRef

API = "/api/2.0/mlflow"
ARTIFACT_PROXY = "/api/2.0/mlflow-artifacts/artifacts"
PROXIED_SCHEME = "mlflow-artifacts"
READY = "READY"
TIMEOUT_S = 30.0


class RegistryError(RuntimeError):
    """A registry read failed; the one-line message says which and carries MLflow's answer."""

    def __init__(self, message: str, answer: str = "") -> None:
        super().__init__(message)
        self.answer = answer  # MLflow's own error, `ERROR_CODE: message`, when it sent one


class NotFound(RegistryError):
    """The registry (or its artifact proxy) holds no such thing: HTTP 404."""


@dataclass(frozen=True)
class VersionRecord:
    """One registered model version, as the registry describes it."""

    ref: ModelRef
    run_id: str
    artifact_uri: str  # where its artifacts live: mlflow-artifacts:/..., runs:/..., s3://...
    tags: Mapping[str, str]

    def proxied_path(self, relative: str) -> str | None:
        """The artifact proxy's path of `relative` inside this version's artifacts; None when they
        are not behind this tracking server's proxy (another scheme, or a proxy on another host)."""
        parts = urllib.parse.urlparse(self.artifact_uri)
        if parts.scheme != PROXIED_SCHEME or parts.netloc:
            return None
        return f"{parts.path.strip('/')}/{relative}"


class RegistryRest:
    """The tracking server at `base_url` (MLFLOW_TRACKING_URI), read over HTTP."""

    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None, timeout: float = TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RegistryRest:
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

    def get(self, path: str, params: Mapping[str, str] | None = None) -> bytes:
        """GET `path` (under the server root); RegistryError with MLflow's answer unless 200."""
        url = f"{self.base_url}{urllib.parse.quote(path)}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            kind, answer = NotFound if exc.code == 404 else RegistryError, _answer(exc.read())
            raise kind(f"MLflow GET {path} -> {exc.code}: {answer}", answer) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(f"MLflow at {self.base_url} unreachable: {reason}") from None

    def get_json(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        body = self.get(f"{API}/{path}", params)
        try:
            answer = json.loads(body)
        except ValueError:
            raise RegistryError(f"MLflow GET {path}: not JSON: {body[:200]!r}") from None
        if not isinstance(answer, dict):
            raise RegistryError(f"MLflow GET {path}: unexpected answer {body[:200]!r}")
        return answer

    def version(self, ref: ModelRef) -> VersionRecord:
        """The version `ref` names, ready to load; NotFound when the registry holds none."""
        params = {"name": ref.name, "version": str(ref.version)}
        try:
            record = self.get_json("model-versions/get", params).get("model_version") or {}
        except NotFound as exc:
            raise NotFound(f"{ref.uri} is not in the registry: {exc.answer}", exc.answer) from None
        status = record.get("status", READY)
        if status != READY:
            detail = f" ({record['status_message']})" if record.get("status_message") else ""
            raise RegistryError(f"{ref.uri} is {status}, not {READY}{detail}")
        location = self.get_json("model-versions/get-download-uri", params).get("artifact_uri", "")
        tags = {t["key"]: t["value"] for t in record.get("tags", [])}
        return VersionRecord(ref, record.get("run_id", ""), location, tags)

    def metrics(self, record: VersionRecord) -> dict[str, float]:
        """The version's run metrics (latest values), completed by its numeric version tags (e.g.
        test_accuracy set at registration); what /model shows."""
        metrics: dict[str, float] = {}
        if record.run_id:
            run = self.get_json("runs/get", {"run_id": record.run_id}).get("run", {})
            metrics.update({m["key"]: float(m["value"]) for m in run.get("data", {}).get("metrics", [])})
        for key, value in record.tags.items():
            with contextlib.suppress(TypeError, ValueError):
                metrics.setdefault(key, float(value))
        return metrics

    def artifact(self, record: VersionRecord, relative: str) -> bytes | None:
        """One file of the version's artifacts through the artifact proxy; None when the version
        has no such file or its artifacts are not behind this server's proxy."""
        path = record.proxied_path(relative)
        if path is None:
            return None
        try:
            return self.get(f"{ARTIFACT_PROXY}/{path}")
        except NotFound:
            return None


def _answer(body: bytes) -> str:
    """MLflow's error JSON as `ERROR_CODE: message`, on one line; else the start of the body."""
    try:
        error = json.loads(body)
        text = f"{error['error_code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        text = body[:200].decode(errors="replace")
    return " ".join(text.split())
