"""Against the cluster `make cluster` built (the kind workflow runs these): each platform service answers,
the game and its WebSocket answer through the ingress, and the promotion commit reaches the served model.

Skipped unless KUBECONFIG names a reachable cluster. The RayService's readiness and one prediction
through it are tests/manifests/test_cluster_game.py (same marker). Services are reached with
`kubectl port-forward` (through the kubelet, so the repo's NetworkPolicies, which admit only the
flows the platform needs, stay as they are); the game through the ingress, as a player reaches it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
GAME_URL = os.environ.get("GUESSME_GAME_URL", "http://guessme.localtest.me").rstrip("/")
MODEL_ENV = "environments/local/model.env"


@pytest.fixture(scope="module")
def kubeconfig() -> str:
    path = os.environ.get("KUBECONFIG")
    if not path or not Path(path).is_file():
        pytest.skip("no cluster: KUBECONFIG is unset or names no file (the kind workflow sets it)")
    probe = subprocess.run(
        [kubectl(), "version", "--request-timeout=5s"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"no cluster: {path} names an unreachable API server ({probe.stderr.strip()[:200]})")
    return path


def kubectl() -> str:
    local = Path(sys.executable).parent / "kubectl"
    return str(local) if local.exists() else (shutil.which("kubectl") or "kubectl")


@contextmanager
def port_forward(namespace: str, service: str, port: int) -> Iterator[int]:
    """`kubectl port-forward svc/<service> :<port>`; yields the local port."""
    proc = subprocess.Popen(
        [kubectl(), "-n", namespace, "port-forward", f"svc/{service}", f":{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:43121 -> 5000"
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, f"kubectl port-forward svc/{service}: {line.strip() or proc.wait(5)}"
        yield int(match.group(1))
    finally:
        proc.terminate()
        proc.wait(10)


def get_until_ok(url: str, timeout_s: float = 120, **kwargs: Any) -> httpx.Response:
    """GET until a 2xx (a service that just started may refuse for a moment); the last answer otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = httpx.get(url, timeout=10, **kwargs)
            if response.is_success or time.monotonic() > deadline:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(3)


@pytest.mark.parametrize(
    ("namespace", "service", "port", "path"),
    [
        ("guessme-platform", "mlflow", 5000, "/health"),
        ("guessme-platform", "object-store", 9000, "/minio/health/live"),
        ("guessme-platform", "airflow-api-server", 8080, "/api/v2/monitor/health"),
        ("argocd", "argocd-server", 443, "/healthz"),
        ("guessme", "guessme-frontend", 8080, "/"),
    ],
    ids=["mlflow", "object-store", "airflow", "argocd", "frontend"],
)
def test_platform_service_answers(
    kubeconfig: str, namespace: str, service: str, port: int, path: str
) -> None:
    scheme = "https" if port == 443 else "http"
    with port_forward(namespace, service, port) as local:
        response = get_until_ok(f"{scheme}://127.0.0.1:{local}{path}", verify=False)
    assert response.is_success, f"{service}{path}: HTTP {response.status_code} {response.text[:300]}"


def test_postgres_accepts_connections(kubeconfig: str) -> None:
    """PostgreSQL speaks no HTTP: its port accepts a TCP connection and the server is ready."""
    with (
        port_forward("guessme-platform", "postgres", 5432) as local,
        socket.create_connection(("127.0.0.1", local), timeout=10),
    ):
        pass
    ready = subprocess.run(
        [kubectl(), "-n", "guessme-platform", "exec", "statefulset/postgres", "--", "pg_isready"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ready.returncode == 0, ready.stdout + ready.stderr


def test_argo_cd_reports_every_application_synced_and_healthy(kubeconfig: str) -> None:
    out = subprocess.run(
        [kubectl(), "-n", "argocd", "get", "applications", "-o", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    apps = json.loads(out)["items"]
    assert apps, "no Argo CD Applications: was the bootstrap applied (make cluster)?"
    states = {
        a["metadata"]["name"]: (
            a.get("status", {}).get("sync", {}).get("status"),
            a.get("status", {}).get("health", {}).get("status"),
        )
        for a in apps
    }
    assert {name: s for name, s in states.items() if s != ("Synced", "Healthy")} == {}


def test_the_game_page_answers_through_the_ingress(kubeconfig: str) -> None:
    response = get_until_ok(f"{GAME_URL}/")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert '<div id="app"' in response.text


def a_one() -> list[list[float]]:
    pixels = [[0.0] * 28 for _ in range(28)]
    for row in range(6, 22):
        pixels[row][14] = 1.0
    return pixels


def test_the_websocket_answers_through_the_ingress(kubeconfig: str) -> None:
    """One message on /ws through the ingress: a prediction, or `no_model` before the first promotion
    (either way the upgrade passed the ingress and Serve answered on the socket)."""
    from websockets.sync.client import connect

    ws_url = GAME_URL.replace("http", "ws", 1) + "/ws"
    with connect(ws_url, open_timeout=20) as ws:
        ws.send(json.dumps({"type": "predict", "id": "cluster-1", "pixels": a_one()}))
        reply = json.loads(ws.recv(timeout=30))
    assert reply["id"] == "cluster-1"
    assert reply["type"] == "prediction" or reply.get("code") == "no_model", reply


def promoted_uri() -> str:
    """The model the GitOps branch deploys: from the remote Argo CD watches when the workflow names it
    (GUESSME_GITOPS_REMOTE, GUESSME_GITOPS_BRANCH), else this checkout's HEAD."""
    remote = os.environ.get("GUESSME_GITOPS_REMOTE")
    if remote:
        branch = os.environ.get("GUESSME_GITOPS_BRANCH", "main")
        subprocess.run(["git", "fetch", "--quiet", remote, branch], cwd=REPO, check=True, timeout=60)
        text = subprocess.run(
            ["git", "show", f"FETCH_HEAD:{MODEL_ENV}"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
    else:
        text = (REPO / MODEL_ENV).read_text()
    match = re.search(r"(?m)^MODEL_URI=(.*)$", text)
    assert match, f"no MODEL_URI line in {MODEL_ENV}"
    return match.group(1).strip()


def test_the_promoted_model_is_served(kubeconfig: str) -> None:
    """The promotion commit reaches the served /model (Argo CD syncs it, Serve reconfigures in place)."""
    uri = promoted_uri()
    if not uri:
        pytest.skip(f"{MODEL_ENV} names no model yet: run the DAG first (the kind workflow does)")
    deadline = time.monotonic() + float(os.environ.get("GUESSME_PROMOTION_WAIT_S", "900"))
    served: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{GAME_URL}/model", timeout=10)
        served = response.json() if response.is_success else {"status": response.status_code}
        if served.get("model_uri") == uri and served.get("model_version") is not None:
            break
        time.sleep(10)
    assert served.get("model_uri") == uri, f"served {served}, promoted {uri}"
    assert served.get("model_version") is not None, served
