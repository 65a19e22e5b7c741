"""Verification after promotion: the promoted version is served, and it recognises the probe set.

A promotion commit only says what *should* serve. `verify_promotion` waits until the environment
reports that it serves the promoted URI, then sends the probe drawings (pipelines/probes/digits.json,
labelled strokes) to the served `/predict`, which renders them with the shared preprocessing of
libs/guessme-core, and asks for at least `promote.verify_min_accuracy` of them right, every answer
coming from the promoted version. Where it waits:
- local: the local sync's status file (guessme_pipeline.deploy_status), written from the app's /model;
- cluster: the RayService's Ready condition (read through the Kubernetes API: the cncf-kubernetes
  provider's KubernetesHook in the DAG, so the Airflow image needs no kubectl), then the served /model.
With `promote.rollback: true`, a failed verification reverts the promotion commit (guessme_pipeline.rollback;
on a cluster, pushed to the remote Argo CD watches: guessme_pipeline.remote_promote.push_revert).
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from guessme_pipeline.deploy_status import (
    DEGRADED,
    HEALTHY,
    Health,
    Observation,
    Served,
    assess,
    one_line,
    read_status,
)

# Inside pipelines/, the folder the Airflow chart's git-sync checks out (values.yaml dags.gitSync.subPath),
# so the probe set is where the DAG's tasks run.
PROBES = Path(__file__).resolve().parents[1] / "probes" / "digits.json"
RAYSERVICE = "guessme-serve"  # apps/guessme-serve/k8s/rayservice.yaml


class VerificationFailed(RuntimeError):
    """The promoted model does not serve, or serves but fails the probe set; the message says which."""


@dataclass(frozen=True)
class VerifyParams:
    """The verification keys of `promote:` in params.yaml (the gate's keys are guessme_pipeline.gate's)."""

    verify_min_accuracy: float = 0.8  # share of the probe drawings the served model must get right
    verify_timeout_s: float = 120.0  # how long to wait for the environment to serve the promoted URI
    rollback: bool = False  # revert a promotion that fails verification

    @classmethod
    def from_promote_section(cls, section: dict[str, Any]) -> "VerifyParams":
        rollback = section.get("rollback", cls.rollback)
        if not isinstance(rollback, bool):
            raise ValueError(f"promote.rollback must be true or false, got {rollback!r}")
        return cls(
            verify_min_accuracy=float(section.get("verify_min_accuracy", cls.verify_min_accuracy)),
            verify_timeout_s=float(section.get("verify_timeout_s", cls.verify_timeout_s)),
            rollback=rollback,
        )

    @classmethod
    def from_params_text(cls, text: str) -> "VerifyParams":
        raw: Any = yaml.safe_load(text) or {}
        return cls.from_promote_section(raw.get("promote") or {})


@dataclass(frozen=True)
class Probe:
    label: int
    drawing: dict[str, Any]  # the /predict body: strokes, width, height


def load_probes(path: Path = PROBES) -> list[Probe]:
    raw = json.loads(path.read_text())["probes"]
    return [Probe(int(p["label"]), {k: p[k] for k in ("strokes", "width", "height")}) for p in raw]


def probe_score(serve_url: str, uri: str, probes: list[Probe]) -> float:
    """Share of `probes` the served model recognises; every answer must come from `uri`."""
    right = 0
    with httpx.Client(timeout=10) as client:
        for probe in probes:
            response = client.post(f"{serve_url}/predict", json=probe.drawing)
            if not response.is_success:
                raise VerificationFailed(
                    f"probe set: /predict answered HTTP {response.status_code}: {response.text[:200]}"
                )
            answer = response.json()
            if answer.get("model_uri") != uri:
                raise VerificationFailed(f"probe set: {answer.get('model_uri')} answered, not {uri}")
            right += int(answer.get("digit") == probe.label)
    return right / len(probes)


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


def verify(look: Look, serve_url: str, uri: str, params: VerifyParams, probes: list[Probe]) -> dict[str, Any]:
    """Raise VerificationFailed unless `uri` is served and recognises the probe set."""
    started = time.monotonic()
    health = wait_health(look, params.verify_timeout_s)
    if health.status != HEALTHY:
        raise VerificationFailed(f"{uri} is {health.status}: {health.reason}")
    served_after = time.monotonic() - started
    score = probe_score(serve_url, uri, probes)
    if score < params.verify_min_accuracy:
        raise VerificationFailed(
            f"{uri} is {DEGRADED}: probe set: it recognises {score:.0%} of {len(probes)} drawings, "
            f"below promote.verify_min_accuracy {params.verify_min_accuracy:.0%}"
        )
    return {"uri": uri, "served_after_s": round(served_after, 2), "probe_accuracy": score}


def verify_or_revert(
    look: Look,
    serve_url: str,
    promoted: dict[str, Any],
    params: VerifyParams,
    probes: list[Probe],
    revert: Callable[[str], dict[str, Any]],
) -> dict[str, Any]:
    """Verify what `promote` returned; on failure, with `promote.rollback: true`, `revert(reason)` that
    promotion commit (only when it made one: `revert` returns RevertResult.as_dict()).
    Raises VerificationFailed (after any revert), so the run is red unless the model serves."""
    try:
        return verify(look, serve_url, str(promoted["uri"]), params, probes)
    except VerificationFailed as failed:
        if not (params.rollback and promoted.get("committed")):
            raise
        reverted = revert(f"verification failed: {failed}")
        raise VerificationFailed(
            f"{failed} (rollback: {reverted['detail']}, {str(reverted['commit'])[:12]})"
        ) from failed


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
    promoted commit), reverting it there on failure when the policy says so."""
    from guessme_pipeline.git import Git
    from guessme_pipeline.rollback import revert_promotion

    commit, uri = str(promoted["commit"]), str(promoted["uri"])
    params = VerifyParams.from_params_text(Git(repo).show(commit, "params.yaml"))
    if mode == "local":
        look = local_look(status_file, commit, uri)
    elif mode == "cluster":
        if k8s is None:
            raise ValueError(
                "verify=cluster reads the RayService through the Kubernetes API: no client given"
            )
        look = cluster_look(serve_url, uri, namespace, k8s)
    else:
        raise ValueError(f"unknown verification mode {mode!r} (local or cluster)")

    def revert(reason: str) -> dict[str, Any]:
        return revert_promotion(repo, env, commit, reason, branch=promoted.get("branch")).as_dict()

    return verify_or_revert(look, serve_url, promoted, params, probes or load_probes(), revert)
