"""MLflow's DNS-rebinding protection against the clients and probes the cluster sends it.

MLflow 3 (mlflow/server/fastapi_security.py HostValidationMiddleware, mlflow/server/security_utils.py):
with `--allowed-hosts`, a request whose Host header matches none of the patterns gets 403, except
the paths in HEALTH_ENDPOINTS (`/health`, `/version`, under `--static-prefix` when one is set).
- Every in-cluster client (Serve's and training's Ray pods, Airflow's tasks) sends the Host of its
  MLFLOW_TRACKING_URI: it must match, or every tracking and registry call is refused.
- The kubelet's httpGet probes send `Host: <pod IP>:<port>` (no httpHeaders set), which matches no
  service name: each probe must use an exempt path, or MLflow never becomes Ready.
The rule is run with MLflow's own matcher (`is_allowed_host_header`), not a copy of it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from manifest_tools import REPO, Obj, environments, find, render
from test_manifests_argocd import mlflow_urls

pytestmark = pytest.mark.manifests

security_utils = pytest.importorskip("mlflow.server.security_utils", reason="MLflow is in the ml environment")

VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _server_container(objs: list[Obj]) -> tuple[Obj, dict[str, str]]:
    """The MLflow server container and the environment its args expand $(VAR) from."""
    deployment = find(objs, "Deployment", "mlflow")
    container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "mlflow")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= find(objs, "ConfigMap", source["configMapRef"]["name"])["data"]
    env |= {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return container, env


def _flag(args: list[str], env: dict[str, str], name: str) -> str | None:
    for arg in args:
        if arg.startswith(f"{name}="):
            return VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), arg.split("=", 1)[1])
    return None


def mlflow_host_problems(objs: list[Obj], root: Path) -> list[str]:
    container, env = _server_container(objs)
    args = container.get("args", [])
    problems: list[str] = []
    allowed_flag = _flag(args, env, "--allowed-hosts")
    if allowed_flag is None:
        return ["Deployment mlflow: no --allowed-hosts; MLflow then answers localhost only"]
    allowed = [h.strip() for h in allowed_flag.split(",") if h.strip()]
    _, clients = mlflow_urls(objs, root)
    for where, url in sorted(clients.items()):
        host = urlsplit(url).netloc
        if not security_utils.is_allowed_host_header(allowed, host):
            problems.append(f"{where}: Host {host!r} of {url} is not in mlflow's --allowed-hosts: 403")
    prefix = _flag(args, env, "--static-prefix") or ""
    exempt = {prefix + p for p in security_utils.HEALTH_ENDPOINTS}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        http = (container.get(probe) or {}).get("httpGet")
        if http and http.get("path") not in exempt:
            problems.append(
                f"Deployment mlflow {probe}: path {http.get('path')!r} is host-validated and the "
                f"kubelet sends Host <pod IP>:<port>; use one of {sorted(exempt)}"
            )
    return problems


@pytest.mark.parametrize("env", environments())
def test_mlflow_admits_its_clients_and_probes(env: str, rendered: dict[str, list[Obj]]) -> None:
    assert mlflow_host_problems(rendered[env], REPO) == []


def test_a_client_host_missing_from_allowed_hosts_is_caught(repo_copy: Path) -> None:
    kustomization = repo_copy / "platform/mlflow/kustomization.yaml"
    text = kustomization.read_text()
    narrowed = text.replace(",mlflow.guessme-platform.svc.cluster.local:5000", "")
    assert narrowed != text
    kustomization.write_text(narrowed)
    problems = mlflow_host_problems(render(repo_copy / "environments/local"), repo_copy)
    assert any("RayService guessme-serve" in p and "403" in p for p in problems), problems
    assert any("airflow/values.yaml env" in p for p in problems), problems


def test_a_probe_on_a_validated_path_is_caught(repo_copy: Path) -> None:
    manifest = repo_copy / "platform/mlflow/mlflow.yaml"
    manifest.write_text(manifest.read_text().replace("httpGet: {path: /health,", "httpGet: {path: /,", 1))
    problems = mlflow_host_problems(render(repo_copy / "environments/local"), repo_copy)
    assert len(problems) == 1, problems
    assert "path '/'" in problems[0], problems


# Serving replicas download a version's ONNX copy through the tracking server's artifact proxy
# (guessme_serve.registry_rest); if artifacts stopped being proxied, every load would silently take
# the slow registry_child path. MLflow 3.17's `mlflow server` serves artifacts unless
# `--no-serve-artifacts`, and with no `--default-artifact-root` new experiments then store under
# `mlflow-artifacts:/` (mlflow/utils/server_cli_utils.py `resolve_default_artifact_root`, run here).
server_cli_utils = pytest.importorskip(
    "mlflow.utils.server_cli_utils", reason="MLflow is in the ml environment"
)


def artifact_root(args: list[str], env: dict[str, str]) -> str:
    """The default artifact root `mlflow server` resolves from `args` (`--flag=value` or `--flag value`)."""
    pairs = [a.split("=", 1) if a.startswith("--") and "=" in a else [a] for a in args]
    flat = [part for pair in pairs for part in pair]

    def value(flag: str) -> str:
        return (
            VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), flat[flat.index(flag) + 1])
            if flag in flat
            else ""
        )

    return str(
        server_cli_utils.resolve_default_artifact_root(
            "--no-serve-artifacts" not in flat, value("--default-artifact-root"), value("--backend-store-uri")
        )
    )


@pytest.mark.parametrize("env", environments())
def test_the_cluster_server_proxies_artifacts(env: str, rendered: dict[str, list[Obj]]) -> None:
    container, variables = _server_container(rendered[env])
    assert artifact_root(container.get("args", []), variables).startswith("mlflow-artifacts:")


def test_the_local_server_proxies_artifacts(tmp_path: Path) -> None:
    from guessme_local.mlflow_server import mlflow_command

    assert artifact_root(mlflow_command(tmp_path, 5000)[3:], {}).startswith("mlflow-artifacts:")


def test_a_server_that_stops_proxying_is_caught() -> None:
    args = ["server", "--backend-store-uri=postgresql://db/mlflow", "--artifacts-destination=s3://bucket"]
    assert artifact_root(args, {}).startswith("mlflow-artifacts:")
    assert not artifact_root([*args, "--no-serve-artifacts"], {}).startswith("mlflow-artifacts:")
    assert not artifact_root([*args, "--default-artifact-root=s3://bucket/mlruns"], {}).startswith(
        "mlflow-artifacts:"
    )
