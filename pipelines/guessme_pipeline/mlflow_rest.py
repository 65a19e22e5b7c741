"""The few MLflow Model Registry calls the DAG makes itself, through MLflow's REST API.

The Airflow environment holds no MLflow client (its pins clash with the serving stack), and these calls
are one HTTP request each, so starting the ML interpreter for them would cost seconds for nothing. They
go through the one plain-HTTP MLflow client (guessme_contracts.mlflow_http), which the serving replica
uses too: the same server address rule, credentials and one-line errors.
"""

from typing import Any

from guessme_contracts.mlflow_http import MlflowHttp, NotFound, RegistryError
from guessme_contracts.model_uri import ModelRef

__all__ = ["RegistryError"]  # what callers catch

CHAMPION = "champion"


def _call(
    method: str, path: str, params: dict[str, str] | None = None, json: dict[str, Any] | None = None
) -> dict[str, Any]:
    return MlflowHttp.from_env().call(method, path, params, json)


def set_alias(name: str, alias: str, version: int) -> None:
    _call("POST", "registered-models/alias", json={"name": name, "alias": alias, "version": str(version)})


def alias_version(name: str, alias: str) -> int | None:
    try:
        body = _call("GET", "registered-models/alias", params={"name": name, "alias": alias})
    except NotFound:
        return None
    return int(body["model_version"]["version"])


def set_version_tags(name: str, version: int, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        _call(
            "POST",
            "model-versions/set-tag",
            json={"name": name, "version": str(version), "key": key, "value": value},
        )


def _model_version(name: str, version: int) -> dict[str, Any] | None:
    """The registry's record of `name` version `version`; None when it holds no such version."""
    try:
        body = _call("GET", "model-versions/get", params={"name": name, "version": str(version)})
    except NotFound:
        return None
    return dict(body["model_version"])


def version_matches(name: str, version: int, run_id: str) -> bool:
    """Whether this registry holds `name` version `version`, made from MLflow run `run_id`."""
    found = _model_version(name, version)
    return found is not None and found.get("run_id") == run_id


def experiment_ids() -> list[str]:
    body = _call("POST", "experiments/search", json={"max_results": 1000})
    return [e["experiment_id"] for e in body.get("experiments", [])]


def version_by_run_tag(key: str, value: str) -> dict[str, Any]:
    """The registered version made by the MLflow run tagged `key = value` (exactly one such version).

    Returns {name, version, uri, run_id, tags}; RegistryError when there is none or more than one."""
    quoted = value.replace("'", "\\'")
    body = _call(
        "POST",
        "runs/search",
        json={"experiment_ids": experiment_ids(), "filter": f"tags.`{key}` = '{quoted}'", "max_results": 50},
    )
    run_ids = [r["info"]["run_id"] for r in body.get("runs", [])]
    versions = []
    for run_id in run_ids:
        found = _call("GET", "model-versions/search", params={"filter": f"run_id = '{run_id}'"})
        versions += found.get("model_versions", [])
    if len(versions) != 1:
        raise RegistryError(
            f"expected one registered version from the run tagged {key}={value}, found {len(versions)} "
            f"(runs: {', '.join(run_ids) or 'none'})"
        )
    v = versions[0]
    return {
        "name": v["name"],
        "version": int(v["version"]),
        "uri": ModelRef(v["name"], int(v["version"])).uri,
        "run_id": v["run_id"],
        "tags": {t["key"]: t["value"] for t in v.get("tags", [])},
    }


def version_tags(name: str, version: int) -> dict[str, str] | None:
    """A registered version's tags; None when the registry does not hold that version."""
    found = _model_version(name, version)
    return None if found is None else {t["key"]: t["value"] for t in found.get("tags", [])}
