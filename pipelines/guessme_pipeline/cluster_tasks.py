"""The DAG's tasks on Kubernetes: train (a RayJob), register (find its version), evaluate (the gate),
promote (a commit pushed to the remote Argo CD watches), verify (the promoted model serves and passes the
probe set; with `promote.rollback: true` a failure pushes the revert). Small JSON-able dicts in and out.

The RayJob runs the same stages as dvc.yaml (apps/guessme-train/k8s/train-stages.sh) and registers its
model in the in-cluster MLflow itself; these tasks hold no ML code, so the Airflow image carries none.
The gate compares the test metrics the registry recorded for the candidate and for the deployed version,
and only when both were measured on the same test set (the `data.md5.test` tag): metrics measured on
different data are not comparable, and then only `force_promote` promotes.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from guessme_contracts.overlay import check_env_name
from guessme_pipeline import mlflow_rest, rayjob, remote_promote, verify
from guessme_pipeline.gate import Decision, GateParams, decide
from guessme_pipeline.settings import ARGOCD_POLL_S, CLUSTER_PARAM_DEFAULTS, PipelineSettings, PushTarget

TEST_SET_TAG = "data.md5.test"
K8S_CONN_ID = "kubernetes_default"  # in-cluster credentials when the connection is not defined


def runs_on_kubernetes() -> bool:
    return PipelineSettings().pipeline_runner == "kubernetes"


@dataclass(frozen=True)
class ClusterSettings:
    env: str
    target: PushTarget
    force_promote: bool
    training: rayjob.TrainingSettings
    serve_url: str = ""  # the game's Serve as the Airflow scheduler pod reaches it
    sync_wait_s: float = ARGOCD_POLL_S

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], settings: PipelineSettings | None = None
    ) -> "ClusterSettings":
        settings = settings or PipelineSettings()
        params = {**CLUSTER_PARAM_DEFAULTS, **params}  # a caller (a test, dag.test) may leave keys out
        env = check_env_name(str(params["env"] or CLUSTER_PARAM_DEFAULTS["env"]))
        remote = str(params.get("push_remote") or settings.gitops_remote)
        if not remote:
            raise ValueError("no Git remote to promote to: set push_remote or GUESSME_GITOPS_REMOTE")
        return cls(
            env=env,
            target=PushTarget(
                remote=remote,
                branch=str(params.get("push_branch") or settings.gitops_branch),
                pull_request=bool(params["pull_request"]),
            ),
            force_promote=bool(params["force_promote"]),
            training=rayjob.TrainingSettings(
                namespace=settings.ray_namespace,
                poll_seconds=settings.rayjob_poll_seconds,
                timeout_seconds=float(
                    params["rayjob_timeout_s"] or CLUSTER_PARAM_DEFAULTS["rayjob_timeout_s"]
                ),
            ),
            serve_url=str(params["serve_url"] or CLUSTER_PARAM_DEFAULTS["serve_url"]),
            sync_wait_s=settings.gitops_sync_wait_s,
        )

    def served_url(self) -> str:
        """`serve_url`, else the Service KubeRay creates for the RayService: <name>-serve-svc, port 8000
        (ray-operator/controllers/ray/utils/util.go GenerateServeServiceName)."""
        ns = self.training.namespace
        return self.serve_url or f"http://{verify.RAYSERVICE}-serve-svc.{ns}.svc.cluster.local:8000"


def train(s: ClusterSettings, run_id: str, k8s: rayjob.CustomObjects) -> dict[str, Any]:
    return rayjob.train(k8s, run_id, s.training)


def register(trained: dict[str, Any]) -> dict[str, Any]:
    """The version the RayJob registered in the in-cluster MLflow, found by the run tag it carries."""
    found = mlflow_rest.version_by_run_tag(rayjob.RUN_TAG, trained["run_tag"])
    print(f"register: the RayJob {trained['rayjob']} registered {found['uri']}", flush=True)
    return found


def _accuracies(tags: Mapping[str, str]) -> dict[str, float]:
    return {k: float(v) for k, v in tags.items() if k.endswith("accuracy")}


def evaluate(s: ClusterSettings, registered: dict[str, Any]) -> dict[str, Any]:
    """The gate: the candidate's recorded test metrics against those of the version the branch deploys."""
    deployed, head, params_text = remote_promote.deployed(s.target, s.env)
    if params_text is None:  # the gate's thresholds are written nowhere else
        raise ValueError(f"{s.target.remote} {s.target.branch} has no params.yaml at {head[:12]}")
    gate = GateParams.from_params_text(params_text, f"params.yaml at {head[:12]}")
    candidate = _accuracies(registered["tags"])
    report: dict[str, Any] = {
        "candidate": candidate,
        "deployed": None,
        "deployed_uri": deployed.uri if deployed else None,
        "branch_head": head,
    }
    if deployed is None:
        decision = decide(candidate, None, gate)
    else:
        tags = mlflow_rest.version_tags(deployed.name, deployed.version)
        if tags is None:  # the registry lost it (a fresh cluster): nothing to compare with
            decision = decide(candidate, None, gate)
        elif tags.get(TEST_SET_TAG) and tags.get(TEST_SET_TAG) == registered["tags"].get(TEST_SET_TAG):
            report["deployed"] = _accuracies(tags)
            decision = decide(candidate, report["deployed"], gate)
        else:
            decision = decide(candidate, None, gate)
            if decision.promote:
                decision = Decision(
                    False,
                    f"{deployed.uri} was tested on another test set ({TEST_SET_TAG} differs): "
                    "the recorded metrics are not comparable; promote with force_promote",
                )
    report["decision"] = decision.as_dict()
    print(f"gate: {'PROMOTE' if decision.promote else 'KEEP'} - {decision.reason}", flush=True)
    mlflow_rest.set_version_tags(
        registered["name"],
        int(registered["version"]),
        {
            "gate.promote": str(decision.promote).lower(),
            "gate.reason": decision.reason[:250],
            "gate.compared_with": report["deployed_uri"] or "none",
        },
    )
    return report


def promote(s: ClusterSettings, registered: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """Push the promotion commit (or open the pull request); GateBlocked when the gate said no."""
    from guessme_pipeline.tasks import gated_candidate

    candidate = gated_candidate(registered, evaluation, s.force_promote)
    result = remote_promote.push_promotion(s.target, s.env, candidate)
    out = {"uri": candidate.model.uri, "name": candidate.model.name, "version": candidate.model.version}
    print(f"promote: {candidate.model.uri} -> {s.target.remote} ({s.target.branch}): {result}", flush=True)
    return {**out, **result}


def verify_promotion(
    s: ClusterSettings, promoted: dict[str, Any], k8s: verify.ReadsCustomObjects
) -> dict[str, Any]:
    """The last task: the RayService Ready, its /model serving the promoted URI, the probe set passed.
    params.yaml is read at the promotion commit on the remote; with `promote.rollback: true` there, a
    failed verification pushes `git revert` of that commit (remote_promote.push_revert)."""
    commit, uri = str(promoted["commit"]), str(promoted["uri"])
    params = verify.VerifyParams.from_params_text(
        remote_promote.file_at(s.target, commit, "params.yaml") or ""
    )
    params = dataclasses.replace(params, verify_timeout_s=params.verify_timeout_s + s.sync_wait_s)
    url = s.served_url()
    look = verify.cluster_look(url, uri, s.training.namespace, k8s)

    def revert(reason: str) -> dict[str, Any]:
        reverted = remote_promote.push_revert(s.target, s.env, commit, reason)
        print(f"verify: rollback of {commit[:12]}: {reverted['detail']}", flush=True)
        return reverted

    result = verify.verify_or_revert(look, url, promoted, params, verify.load_probes(), revert)
    print(f"verify: {uri} serves at {url}; probe set {result['probe_accuracy']:.0%}", flush=True)
    return result
