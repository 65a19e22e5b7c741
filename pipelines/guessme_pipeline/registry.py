"""The few MLflow Model Registry calls the DAG makes itself, through MLflow's REST API.

The Airflow environment holds no MLflow client (its pins clash with the serving stack), and these calls
are one HTTP request each, so starting the ML interpreter for them would cost seconds for nothing.
"""

import os
from typing import Any

import httpx

CHAMPION = "champion"


class RegistryError(RuntimeError):
    """An MLflow registry call failed; the message carries MLflow's answer."""


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://")):
        raise RegistryError(f"MLFLOW_TRACKING_URI must name an MLflow server (http...), got {uri!r}")
    return uri.rstrip("/")


def _call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = httpx.request(method, f"{tracking_uri()}/api/2.0/mlflow/{path}", timeout=30, **kwargs)
    if not response.is_success:
        raise RegistryError(f"MLflow {method} {path} -> {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json() if response.content else {}
    return body


def set_alias(name: str, alias: str, version: int) -> None:
    _call("POST", "registered-models/alias", json={"name": name, "alias": alias, "version": str(version)})


def alias_version(name: str, alias: str) -> int | None:
    try:
        body = _call("GET", "registered-models/alias", params={"name": name, "alias": alias})
    except RegistryError as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc) or "404" in str(exc):
            return None
        raise
    return int(body["model_version"]["version"])


def set_version_tags(name: str, version: int, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        _call(
            "POST",
            "model-versions/set-tag",
            json={"name": name, "version": str(version), "key": key, "value": value},
        )


def version_matches(name: str, version: int, run_id: str) -> bool:
    """Whether this registry holds `name` version `version`, made from MLflow run `run_id`."""
    try:
        body = _call("GET", "model-versions/get", params={"name": name, "version": str(version)})
    except RegistryError as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return False
        raise
    return bool(body["model_version"].get("run_id") == run_id)
