"""Ray Serve's performance settings have one owner, apps/guessme-serve/k8s/serve-performance.env, and
both readers see the same values: the RayService's Ray containers (a generated ConfigMap, envFrom) and
the local head of `make up` (guessme_local.ray_head.SERVE_PERFORMANCE_ENV, python-dotenv).

What a container sees, by the Kubernetes API reference (Container, `envFrom`): "When a key exists in
multiple sources, the value associated with the last source will take precedence. Values defined by an
Env with a duplicate key will take precedence." Kustomize reads an env file's value verbatim (quotes and
a trailing `# ...` included) where python-dotenv strips them: the two readers are compared, not trusted.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from manifest_tools import RAYSERVICE, REPO, Obj, describe, environments, find, pod_specs, render

from guessme_local.ray_head import SERVE_PERFORMANCE_ENV, SERVE_PERFORMANCE_FILE

pytestmark = pytest.mark.manifests

ENV_FILE = Path("apps/guessme-serve/k8s/serve-performance.env")
FROM_SECRET = "<from a Secret or field>"


def container_env(container: Obj, configmaps: dict[str, dict[str, str]]) -> dict[str, str]:
    """The environment a container starts with: its envFrom sources in order, then its env entries."""
    found: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = configmaps[source["configMapRef"]["name"]]
            found.update({f"{prefix}{k}": v for k, v in data.items()})
    for entry in container.get("env", []):
        found[entry["name"]] = entry.get("value", FROM_SECRET)
    return found


def serve_env_problems(objs: list[Obj], wanted: dict[str, str]) -> list[str]:
    """Ray containers of the RayService whose environment lacks or changes one of `wanted`."""
    service = find(objs, "RayService", RAYSERVICE)
    namespace = service["metadata"]["namespace"]
    configmaps = {
        o["metadata"]["name"]: dict(o.get("data") or {})
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"].get("namespace") == namespace
    }
    found = []
    for where, pod in pod_specs(service):
        for container in pod["containers"]:
            env = container_env(container, configmaps)
            for key, value in wanted.items():
                if env.get(key) != value:
                    found.append(
                        f"{describe(service)} {where} {container['name']}: {key}={env.get(key)!r}, "
                        f"{ENV_FILE} says {value!r}"
                    )
    return found


def generated_settings(objs: list[Obj]) -> dict[str, str]:
    """The data of the ConfigMap kustomize generates from the env file (whatever its hash suffix)."""
    (configmap,) = [
        o
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("guessme-serve-performance-")
    ]
    return dict(configmap["data"])


def test_the_local_head_reads_the_clusters_file() -> None:
    assert SERVE_PERFORMANCE_FILE.resolve() == (REPO / ENV_FILE).resolve()
    assert "RAY_SERVE_LOG_TO_STDERR" in SERVE_PERFORMANCE_ENV  # the key the RayService used to miss


@pytest.mark.parametrize("env", environments())
def test_both_readers_agree(env: str, rendered: dict[str, list[Obj]]) -> None:
    assert generated_settings(rendered[env]) == SERVE_PERFORMANCE_ENV


@pytest.mark.parametrize("env", environments())
def test_every_ray_container_runs_with_them(env: str, rendered: dict[str, list[Obj]]) -> None:
    service = find(rendered[env], "RayService", RAYSERVICE)
    assert len([c for _, pod in pod_specs(service) for c in pod["containers"]]) >= 2  # head and workers
    problems = serve_env_problems(rendered[env], SERVE_PERFORMANCE_ENV)
    assert not problems, "\n".join(problems)


def test_the_drift_this_replaces_is_caught(rendered: dict[str, list[Obj]]) -> None:
    """Before: four of the keys written into the RayService's env, none from the file."""
    objs = copy.deepcopy(rendered["local"])
    service = find(objs, "RayService", RAYSERVICE)
    for _, pod in pod_specs(service):
        for container in pod["containers"]:
            del container["envFrom"]
            container["env"] += [
                {"name": k, "value": v}
                for k, v in SERVE_PERFORMANCE_ENV.items()
                if k != "RAY_SERVE_LOG_TO_STDERR"
            ]
    problems = serve_env_problems(objs, SERVE_PERFORMANCE_ENV)
    assert len(problems) == 2  # the head and the worker group
    assert all("RAY_SERVE_LOG_TO_STDERR=None" in p for p in problems)


def test_an_env_entry_that_overrides_the_file_is_caught(rendered: dict[str, list[Obj]]) -> None:
    objs = copy.deepcopy(rendered["local"])
    head = find(objs, "RayService", RAYSERVICE)["spec"]["rayClusterConfig"]["headGroupSpec"]
    head["template"]["spec"]["containers"][0]["env"].append({"name": "RAY_worker_niceness", "value": "15"})
    (problem,) = serve_env_problems(objs, SERVE_PERFORMANCE_ENV)
    assert "ray-head: RAY_worker_niceness='15'" in problem


def test_a_value_the_two_readers_read_differently_is_caught(repo_copy: Path) -> None:
    from dotenv import dotenv_values

    path = repo_copy / ENV_FILE
    path.write_text(
        path.read_text().replace("RAY_worker_niceness=0", "RAY_worker_niceness=0  # serving first")
    )
    local = {k: v for k, v in dotenv_values(path).items() if v is not None}
    cluster = generated_settings(render(repo_copy / "environments/local"))
    assert local["RAY_worker_niceness"] == "0"
    assert cluster["RAY_worker_niceness"] == "0  # serving first"
    assert cluster != local
