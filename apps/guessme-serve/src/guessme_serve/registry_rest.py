"""What a replica reads from the MLflow registry, over MLflow's REST API: no MLflow import.

A version's record (`model-versions/get`), where its artifacts live (`model-versions/get-download-uri`),
its run's metrics (`runs/get`), and one file of its artifacts through the tracking server's artifact
proxy, all through the one plain-HTTP MLflow client (guessme_contracts.mlflow_http: server address,
credentials, errors). Both servers run with `--artifacts-destination` and no
`--default-artifact-root` (localdev/guessme_local/mlflow_server.py, platform/mlflow/mlflow.yaml;
tests/manifests/test_manifests_mlflow.py holds them to it), so new experiments' artifacts live under
`mlflow-artifacts:/` (MLflow 3.17 mlflow/utils/server_cli_utils.py `resolve_default_artifact_root`)
and `mlflow-artifacts:/<path>` is served at `<tracking URI>/api/2.0/mlflow-artifacts/artifacts/<path>`,
as MLflow's own client resolves it (mlflow/store/artifact/mlflow_artifacts_repo.py `resolve_uri`); a
missing file is a 404. Each read is one small HTTP request, so a replica learns a version in
milliseconds. Artifacts anywhere else (`runs:/`, `s3://`, a proxy on another host) are not read here:
the caller falls back to MLflow.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from guessme_contracts.mlflow_http import MlflowHttp, NotFound, RegistryError
from guessme_contracts.model_uri import ModelRef

__all__ = ["NotFound", "RegistryError", "RegistryRest", "VersionRecord"]

ARTIFACT_PROXY = "/api/2.0/mlflow-artifacts/artifacts"
PROXIED_SCHEME = "mlflow-artifacts"
READY = "READY"


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
    """The registry reads a replica makes, on the tracking server MLFLOW_TRACKING_URI names."""

    def __init__(self, http: MlflowHttp) -> None:
        self.http = http

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RegistryRest:
        return cls(MlflowHttp.from_env(env))

    def version(self, ref: ModelRef) -> VersionRecord:
        """The version `ref` names, ready to load; NotFound when the registry holds none."""
        params = {"name": ref.name, "version": str(ref.version)}
        try:
            record = self.http.call("GET", "model-versions/get", params).get("model_version") or {}
        except NotFound as exc:
            raise NotFound(f"{ref.uri} is not in the registry: {exc.answer}", exc.answer) from None
        status = record.get("status", READY)
        if status != READY:
            detail = f" ({record['status_message']})" if record.get("status_message") else ""
            raise RegistryError(f"{ref.uri} is {status}, not {READY}{detail}")
        location = self.http.call("GET", "model-versions/get-download-uri", params).get("artifact_uri", "")
        tags = {t["key"]: t["value"] for t in record.get("tags", [])}
        return VersionRecord(ref, record.get("run_id", ""), location, tags)

    def metrics(self, record: VersionRecord) -> dict[str, float]:
        """The version's run metrics (latest values), completed by its numeric version tags (e.g.
        test_accuracy set at registration); what /model shows."""
        metrics: dict[str, float] = {}
        if record.run_id:
            run = self.http.call("GET", "runs/get", {"run_id": record.run_id}).get("run", {})
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
            return self.http.request("GET", f"{ARTIFACT_PROXY}/{path}")
        except NotFound:
            return None
