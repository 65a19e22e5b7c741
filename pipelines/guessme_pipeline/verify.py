"""Verification after promotion: the promoted version is served, and it recognises the probe set.

A promotion commit only says what *should* serve. `verify_promotion` waits until the environment
reports that it serves the promoted URI and that this model recognises at least
`promote.verify_min_accuracy` of the probe drawings (guessme_contracts.probes, the package's probe set, sent
to the served `/predict`, every answer coming from the promoted version). Where it looks:
- local: the local sync's status file (guessme_contracts.deploy_status). The sync itself scores the probe
  set once the committed URI answers and reports Healthy only when it passes, so this task reads that
  verdict (and its score) instead of scoring again;
- cluster: the RayService's Ready condition (read through the Kubernetes API: the cncf-kubernetes
  provider's KubernetesHook in the DAG, so the Airflow image needs no kubectl), then the served /model,
  then the probe set, scored here with the same guessme_contracts.probes code.
With `promote.rollback: true`, a failed verification reverts the promotion commit (guessme_pipeline.rollback;
on a cluster, pushed to the remote Argo CD watches: guessme_pipeline.remote_promote.push_revert).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from guessme_contracts import probes as probe_set
from guessme_contracts.deploy_status import (
    DEGRADED,
    HEALTHY,
    Health,
    Observation,
    Served,
    assess,
    one_line,
    read_status,
)
from guessme_contracts.probes import Probe, ProbeError, ProbeScore

RAYSERVICE = "guessme-serve"  # apps/guessme-serve/k8s/rayservice.yaml


class VerificationFailed(RuntimeError):
    """The promoted model does not serve, or serves but fails the probe set; the message says which."""


@dataclass(frozen=True)
class VerifyParams:
    """The verification keys of `promote:` in params.yaml (the gate's keys are guessme_pipeline.gate's).
    Each is required: params.yaml is their only source, so a missing key fails like a mistyped one."""

    verify_min_accuracy: float  # share of the probe drawings the served model must get right
    verify_timeout_s: float  # how long to wait for the environment to serve the promoted URI
    rollback: bool  # revert a promotion that fails verification

    @classmethod
    def from_promote_section(cls, section: dict[str, Any]) -> "VerifyParams":
        missing = [k for k in ("verify_timeout_s", "rollback") if k not in section]
        if missing:
            raise ValueError(f"params.yaml promote: missing {', '.join(missing)}")
        rollback = section["rollback"]
        if not isinstance(rollback, bool):
            raise ValueError(f"promote.rollback must be true or false, got {rollback!r}")
        try:
            min_accuracy = probe_set.section_threshold(section)
        except ProbeError as exc:
            raise ValueError(str(exc)) from exc
        return cls(min_accuracy, float(section["verify_timeout_s"]), rollback)

    @classmethod
    def from_params_text(cls, text: str) -> "VerifyParams":
        raw: Any = yaml.safe_load(text) or {}
        return cls.from_promote_section(raw.get("promote") or {})


def load_probes() -> list[Probe]:
    """The probe set guessme_contracts ships (on a cluster, the one installed in the Airflow image)."""
    return list(probe_set.packaged_probes())


Look = Callable[[], Health]


def wait_health(look: Look, timeout: float, poll_s: float = 0.25) -> Health:
    """Poll `look` until Healthy or Degraded; Progressing past `timeout` fails."""
    deadline = time.monotonic() + timeout
    health = look()
    while health.status not in (HEALTHY, DEGRADED):
        if time.monotonic() > deadline:
            raise VerificationFailed(
                f"{DEGRADED}: not served within {timeout:.0f} s, still {health.status}: {health.reason}"
            )
        time.sleep(poll_s)
        health = look()
    return health


def local_look(status_file: Path, commit: str, uri: str) -> Look:
    """Health from the local sync's status file, once the sync has taken up `commit` (or a later
    commit that deploys the same URI)."""

    def look() -> Health:
        status = read_status(status_file)
        if status is None:
            return Health("Progressing", f"no sync status at {status_file} (is the local sync running?)")
        if status.commit != commit and status.model_uri != uri:
            return Health("Progressing", f"the sync is at {status.commit[:12]}, not yet at {commit[:12]}")
        return Health(status.health, status.reason)

    return look


class ReadsCustomObjects(Protocol):
    """The one KubernetesHook method used here (a test hands in a double)."""

    def get_custom_object(
        self, group: str, version: str, plural: str, name: str, namespace: str | None = None
    ) -> Any: ...


def cluster_look(
    serve_url: str, uri: str, namespace: str, k8s: ReadsCustomObjects, name: str = RAYSERVICE
) -> Look:
    """Health on a cluster: the RayService's Ready condition, then what its /model serves."""

    def look() -> Health:
        try:
            service = k8s.get_custom_object("ray.io", "v1", "rayservices", name, namespace)
        except Exception as exc:  # the API's error (404 before the first sync, 403 without RBAC): wait
            code = getattr(exc, "status", None)
            why = f"HTTP {code} {getattr(exc, 'reason', '')}" if code else f"{type(exc).__name__}: {exc}"
            return Health("Progressing", f"cannot read RayService {namespace}/{name}: {one_line(why)}")
        conditions = ((service or {}).get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            why = (ready or {}).get("message") or "no Ready condition yet"
            return Health("Progressing", f"RayService {name} is not Ready: {one_line(why)}")
        try:
            served = Served.from_model_info(httpx.get(f"{serve_url}/model", timeout=5).json())
        except (httpx.HTTPError, ValueError) as exc:
            return assess(uri, Observation(None, f"/model does not answer ({type(exc).__name__})"))
        return assess(uri, Observation(served))

    return look


Score = Callable[[], ProbeScore]  # the served model's probe score (raises ProbeError when unscored)


def check(look: Look, uri: str, params: VerifyParams, score: Score) -> dict[str, Any]:
    """Raise VerificationFailed unless `look` turns Healthy and `score` says the probe set passed."""
    started = time.monotonic()
    health = wait_health(look, params.verify_timeout_s)
    if health.status != HEALTHY:
        raise VerificationFailed(f"{uri} is {health.status}: {health.reason}")
    served_after = time.monotonic() - started
    try:
        result = score()
    except ProbeError as exc:
        raise VerificationFailed(f"{uri} is {DEGRADED}: {one_line(str(exc))}") from exc
    if not result.passed:
        raise VerificationFailed(f"{uri} is {DEGRADED}: {result.summary()}")
    return {"uri": uri, "served_after_s": round(served_after, 2), "probe_accuracy": result.accuracy}


def verify(look: Look, serve_url: str, uri: str, params: VerifyParams, probes: list[Probe]) -> dict[str, Any]:
    """On a cluster: `uri` is served (`look`), then the probe set is scored against `serve_url`."""

    def score() -> ProbeScore:
        return probe_set.score_served(serve_url, uri, probes, params.verify_min_accuracy)

    return check(look, uri, params, score)


def recorded_score(status_file: Path, uri: str) -> Score:
    """Locally: the probe score the sync recorded with its Healthy verdict (it scores, this reads)."""

    def score() -> ProbeScore:
        status = read_status(status_file)
        recorded = status.probe_score() if status is not None and status.model_uri == uri else None
        if recorded is None:
            raise ProbeError(
                f"probe set: the local sync recorded no score for {uri} in {status_file} "
                "(a sync started before it scored the probe set? restart it with `make up`)"
            )
        return recorded

    return score


def or_revert(
    run: Callable[[], dict[str, Any]],
    promoted: dict[str, Any],
    params: VerifyParams,
    revert: Callable[[str], dict[str, Any]],
) -> dict[str, Any]:
    """`run` a verification of what `promote` returned; on failure, with `promote.rollback: true`,
    `revert(reason)` that promotion commit (only when it made one: `revert` returns RevertResult.as_dict()).
    Raises VerificationFailed (after any revert), so the run is red unless the model serves."""
    try:
        return run()
    except VerificationFailed as failed:
        if not (params.rollback and promoted.get("committed")):
            raise
        reverted = revert(f"verification failed: {failed}")
        raise VerificationFailed(
            f"{failed} (rollback: {reverted['detail']}, {str(reverted['commit'])[:12]})"
        ) from failed


def verify_or_revert(
    look: Look,
    serve_url: str,
    promoted: dict[str, Any],
    params: VerifyParams,
    probes: list[Probe],
    revert: Callable[[str], dict[str, Any]],
) -> dict[str, Any]:
    """`verify` (the cluster's way) what `promote` returned, reverting on failure when the policy says so."""
    return or_revert(
        lambda: verify(look, serve_url, str(promoted["uri"]), params, probes), promoted, params, revert
    )


def verify_promoted(
    repo: Path,
    env: str,
    promoted: dict[str, Any],
    mode: str,
    serve_url: str,
    status_file: Path,
    namespace: str = "guessme",
    probes: list[Probe] | None = None,
    k8s: ReadsCustomObjects | None = None,
) -> dict[str, Any]:
    """The local DAG's last task: verify a promotion committed in `repo` (params.yaml read at the
    promoted commit), reverting it there on failure when the policy says so. `local` reads the sync's
    verdict (probe set included); `cluster` scores the probe set against `serve_url` itself."""
    from guessme_contracts.git import Git
    from guessme_pipeline.rollback import revert_promotion

    commit, uri = str(promoted["commit"]), str(promoted["uri"])
    params = VerifyParams.from_params_text(Git(repo).show(commit, "params.yaml"))

    def revert(reason: str) -> dict[str, Any]:
        return revert_promotion(repo, env, commit, reason, branch=promoted.get("branch")).as_dict()

    if mode == "local":
        look, score = local_look(status_file, commit, uri), recorded_score(status_file, uri)
        return or_revert(lambda: check(look, uri, params, score), promoted, params, revert)
    if mode != "cluster":
        raise ValueError(f"unknown verification mode {mode!r} (local or cluster)")
    if k8s is None:
        raise ValueError("verify=cluster reads the RayService through the Kubernetes API: no client given")
    look = cluster_look(serve_url, uri, namespace, k8s)
    return verify_or_revert(look, serve_url, promoted, params, probes or load_probes(), revert)
