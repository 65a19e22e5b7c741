"""The DAG's Kubernetes path with `dag.test()`: training RayJob, registration, gate, a pushed promotion
and its verification (the RayService Ready, the promoted model served, the probe set; rollback by a
pushed revert).

What is real: Airflow running the tasks, the cncf-kubernetes provider's KubernetesHook and the official
`kubernetes` client making HTTP calls, a real MLflow server, real Git pushes to a bare remote (the one
Argo CD would watch), the verification's HTTP calls. What is replayed: the Kubernetes API server
(tests/pipeline/fake_kube.py) with the RayJob and RayService the overlay renders (`kubectl kustomize
environments/local`), the RayJob statuses KubeRay v1.7.0 writes (k8s_responses/rayjob_status.yaml) and
the RayService statuses of the Argo CD health samples (both validated against the vendored CRDs). What
the RayJob's driver would do, register a model in MLflow, the double does when the job is created, with
the tags the job carries. The game (`FakeGame`) serves whatever the remote's main deploys, as Argo CD
would sync it at once, and recognises the probe drawings or not.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from fake_kube import FakeRayJobs, recorded_statuses, serve
from pipeline_helpers import OVERLAY, committed_uri, git, make_repo
from support.http_stub import StubHandler, serving

from guessme_pipeline import rayjob
from guessme_pipeline.verify import load_probes

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "guessme_train_deploy"
TASKS = ["train", "register", "evaluate", "promote", "champion", "verify"]
RAYSERVICE_SAMPLES = REPO / "platform/argocd/health/ray.io/RayService/testdata"
MODEL = "guessme-cnn-cluster-test"  # not the local tests' model name: they count its versions
TEST_SET_MD5 = "0f0e0d0c0b0a09080706050403020100"

pytestmark = pytest.mark.integration


def rendered(kind: str) -> dict[str, Any]:
    """The one object of `kind` that environments/local renders."""
    kubectl = Path(os.environ["ML_PYTHON"]).parent / "kubectl"
    out = subprocess.run(
        [str(kubectl), "kustomize", str(REPO / "environments" / "local")],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    (obj,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == kind]
    return obj


def rendered_rayjob() -> dict[str, Any]:
    """The RayJob of environments/local as Argo CD would have synced it (suspended, with its tracking
    annotation and the server's bookkeeping)."""
    job = rendered("RayJob")
    meta = job["metadata"]
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        "argocd.argoproj.io/tracking-id": "guessme-local:ray.io/RayJob:guessme/guessme-train",
    }
    meta.update(uid="7d1c1f7e-0000-4000-8000-000000000001", resourceVersion="4242", generation=1)
    job["status"] = {"jobDeploymentStatus": "Suspended"}
    return job


class Mlflow:
    """MLflow REST calls the tests make (the Airflow environment has no MLflow client)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = httpx.request(method, f"{self.url}/api/2.0/mlflow/{path}", timeout=30, **kwargs)
        assert r.is_success, r.text
        body: dict[str, Any] = r.json() if r.content else {}
        return body

    def register_as_the_job_would(self, job: dict[str, Any], accuracy: float) -> int:
        """What train-stages.sh's `register` does in the job, minus the model: a run carrying the tags of
        MLFLOW_RUN_CONTEXT (MLflow's SystemEnvironmentContext), a new version with its test metrics."""
        (head,) = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]
        context = json.loads(next(e["value"] for e in head["env"] if e["name"] == "MLFLOW_RUN_CONTEXT"))
        found = httpx.get(
            f"{self.url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "cluster"}
        )
        experiment = (
            found.json()["experiment"]["experiment_id"]
            if found.is_success
            else self.call("POST", "experiments/create", json={"name": "cluster"})["experiment_id"]
        )
        tags = [{"key": k, "value": v} for k, v in context.items()]
        run = self.call("POST", "runs/create", json={"experiment_id": experiment, "tags": tags})["run"]
        run_id = run["info"]["run_id"]
        httpx.post(f"{self.url}/api/2.0/mlflow/registered-models/create", json={"name": MODEL}, timeout=30)
        version = self.call(
            "POST",
            "model-versions/create",
            json={"name": MODEL, "source": f"{run['info']['artifact_uri']}/model", "run_id": run_id},
        )["model_version"]["version"]
        for key, value in {"test_accuracy": str(accuracy), "data.md5.test": TEST_SET_MD5}.items():
            self.call(
                "POST",
                "model-versions/set-tag",
                json={"name": MODEL, "version": version, "key": key, "value": value},
            )
        return int(version)

    def champion(self) -> int | None:
        r = httpx.get(
            f"{self.url}/api/2.0/mlflow/registered-models/alias",
            params={"name": MODEL, "alias": "champion"},
            timeout=10,
        )
        return int(r.json()["model_version"]["version"]) if r.is_success else None


def rayservice(sample: str) -> dict[str, Any]:
    """The RayService of environments/local with the status of one Argo CD health sample."""
    service = rendered("RayService")
    service["status"] = yaml.safe_load((RAYSERVICE_SAMPLES / sample).read_text())["status"]
    return service


def remote_params(rollback: bool) -> str:
    """The repository's params.yaml (every key is required), with `rollback` set and verification
    waiting briefly (the fixture sets no Argo CD poll wait)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["promote"] |= {"verify_timeout_s": 2, "rollback": rollback}
    return yaml.safe_dump(params)


def make_remote(tmp_path: Path, rollback: bool) -> Path:
    """The Git remote Argo CD watches: a bare repository whose main deploys nothing yet."""
    source = make_repo(tmp_path / "source", model_env="# promote edits the next line\nMODEL_URI=\n")
    (source / "params.yaml").write_text(remote_params(rollback))
    git(source, "add", "params.yaml")
    git(source, "commit", "--quiet", "-m", "params")
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(source), str(bare)], check=True)
    return bare


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return make_remote(tmp_path, rollback=False)


class FakeGame(StubHandler):
    """Serve as the scheduler pod reaches it: /model names what the remote's main deploys (Argo CD synced
    it), /predict recognises the probe drawings when `recognises` (else answers the next digit)."""

    remote: Path
    recognises = True

    def served(self) -> str:
        return committed_uri(self.remote, "main")

    def do_GET(self) -> None:  # http.server's name for the handler
        uri = self.served()
        version = uri.rsplit("/", 1)[-1] or None
        self.send_json(200, {"model_uri": uri, "model_version": version, "last_error": None})

    def do_POST(self) -> None:
        drawing = self.read_json()
        (label,) = [p.label for p in load_probes() if p.drawing == drawing]
        digit = label if self.recognises else (label + 1) % 10
        self.send_json(200, {"digit": digit, "model_uri": self.served()})


class Cluster:
    """One fake cluster per test: its API server, what training will score, the DAG to run."""

    def __init__(self, tmp_path: Path, mlflow: Mlflow) -> None:
        self.mlflow = mlflow
        self.accuracy = 0.97
        self.registered: list[int] = []
        self.fake = FakeRayJobs(rendered_rayjob(), recorded_statuses()["succeeded"], self._trained)
        self.fake.rayservices["guessme-serve"] = rayservice("healthy.yaml")
        self.kubeconfig = tmp_path / "kubeconfig"
        self.game = type("Game", (FakeGame,), {})  # per test: the remote and what it recognises

    def _trained(self, job: dict[str, Any]) -> None:
        self.registered.append(self.mlflow.register_as_the_job_would(job, self.accuracy))

    def run(self, remote: Path, **conf: Any) -> dict[str, str]:
        """The DAG file as the Airflow image parses it (dag.test() parses the DAG folder again, too)."""
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(REPO / "pipelines" / "dags")).dags[DAG_ID]
        assert sorted(dag.task_ids) == sorted(TASKS)
        self.game.remote = remote
        with serving(self.game) as serve_url:
            run_conf = {
                "push_remote": str(remote),
                "push_branch": "main",
                "verify": "cluster",
                "serve_url": serve_url,
                **conf,
            }
            dag_run = dag.test(run_conf=run_conf)
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


@pytest.fixture
def cluster(
    tmp_path: Path, airflow_db: Path, ml_mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    c = Cluster(tmp_path, Mlflow(ml_mlflow_server))
    with serve(c.fake, c.kubeconfig):
        connection = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(c.kubeconfig)}}
        monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(connection))
        monkeypatch.setenv("GUESSME_PIPELINE_RUNNER", "kubernetes")  # what the Airflow image sets
        monkeypatch.setenv("GUESSME_RAYJOB_POLL_SECONDS", "0.05")
        monkeypatch.setenv("GUESSME_GITOPS_SYNC_WAIT_S", "0")  # the fake game serves a push at once
        monkeypatch.setenv("GUESSME_GIT_TOKEN", "test-token")
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        yield c


def test_recorded_statuses_match_the_kuberay_crd() -> None:
    """The replayed statuses use only fields (and values) the pinned RayJob CRD defines."""
    crd = yaml.safe_load((REPO / "tests/manifests/crds/kuberay-v1.7.0/ray.io_rayjobs.yaml").read_text())
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = {**v1["schema"]["openAPIV3Schema"]["properties"]["status"], "additionalProperties": False}
    for name, statuses in recorded_statuses().items():
        for status in statuses:
            jsonschema.validate(status, schema)
        assert statuses[-1]["jobDeploymentStatus"] in {"Complete", "Failed"}, name


def test_a_run_trains_registers_and_pushes_the_promotion(cluster: Cluster, remote: Path) -> None:
    before = git(remote, "rev-parse", "main")
    states = cluster.run(remote)
    assert states == dict.fromkeys(TASKS, "success")
    # The run's RayJob: the template renamed, unsuspended, its MLflow runs tagged, Argo CD's marks gone.
    (job,) = cluster.fake.created.values()
    assert job["metadata"]["name"].startswith("guessme-train-")
    assert job["metadata"]["name"] != "guessme-train"
    assert job["spec"]["suspend"] is False
    assert "argocd.argoproj.io/tracking-id" not in job["metadata"]["annotations"]
    assert cluster.fake.template["metadata"]["annotations"][rayjob.TEMPLATE_ANNOTATION] == "true"
    assert rayjob.TEMPLATE_ANNOTATION not in job["metadata"]["annotations"]  # a run is no template
    template_spec = cluster.fake.template["spec"]
    assert job["spec"]["entrypoint"] == template_spec["entrypoint"]  # the repository's manifest, not a copy

    def head_image(spec: dict[str, Any]) -> str:
        return str(spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"])

    assert head_image(job["spec"]) == head_image(template_spec) == "guessme-train:dev"
    # One commit on the remote's main, changing only the overlay's URI line, to the registered version.
    (version,) = cluster.registered
    after = git(remote, "rev-parse", "main")
    assert git(remote, "rev-parse", "main^") == before
    assert git(remote, "diff-tree", "--no-commit-id", "--name-only", "-r", "main") == OVERLAY
    assert committed_uri(remote, "main") == f"models:/{MODEL}/{version}"
    assert f"Model-Version: {version}" in git(remote, "log", "-1", "--format=%B", after)
    assert cluster.mlflow.champion() == version


def test_a_failed_rayjob_fails_the_run_and_promotes_nothing(cluster: Cluster, remote: Path) -> None:
    cluster.fake.statuses = recorded_statuses()["failed"]
    cluster.fake.on_create = lambda job: None  # a failed job registers nothing
    before = git(remote, "rev-parse", "main")
    states = cluster.run(remote)
    assert states["train"] == "failed"
    assert {states[t] for t in TASKS[1:]} == {"upstream_failed"}
    assert git(remote, "rev-parse", "main") == before
    assert committed_uri(remote, "main") == ""


def test_a_missing_token_fails_promote_and_commits_nothing(
    cluster: Cluster, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GUESSME_GIT_TOKEN")
    before = git(remote, "rev-parse", "main")
    states = cluster.run(remote)
    assert states["evaluate"] == "success"  # reading a public remote needs no token
    assert states["promote"] == "failed"
    assert states["champion"] == "upstream_failed"
    assert git(remote, "rev-parse", "main") == before


def test_the_missing_token_message_names_the_secret(remote: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from guessme_contracts.model_uri import ModelRef
    from guessme_pipeline.promote import Candidate
    from guessme_pipeline.remote_promote import MissingToken, push_promotion
    from guessme_pipeline.settings import PushTarget

    monkeypatch.delenv("GUESSME_GIT_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    before = git(remote, "rev-parse", "main")
    candidate = Candidate(ModelRef.parse(f"models:/{MODEL}/3"), run_id="0" * 32)
    with pytest.raises(MissingToken, match=r"Create the Secret guessme-git-token .*nothing was committed"):
        push_promotion(PushTarget(str(remote), "main"), "local", candidate)
    assert git(remote, "rev-parse", "main") == before


def test_the_gate_keeps_a_model_that_is_not_better(cluster: Cluster, remote: Path) -> None:
    assert cluster.run(remote)["promote"] == "success"
    deployed = git(remote, "rev-parse", "main")
    cluster.accuracy = 0.96  # the second training scores lower on the same test set
    states = cluster.run(remote)
    assert states["evaluate"] == "success"
    assert {states["promote"], states["champion"]} == {"skipped"}
    assert git(remote, "rev-parse", "main") == deployed
    assert len(cluster.registered) == 2  # registered (and tagged with the gate's reason), not deployed


def test_the_run_is_green_only_once_the_promoted_model_serves(cluster: Cluster, remote: Path) -> None:
    states = cluster.run(remote)
    assert states["verify"] == "success"
    # It read the RayService through the Kubernetes API (no kubectl in the Airflow image).
    assert ("GET", "/apis/ray.io/v1/namespaces/guessme/rayservices/guessme-serve") in cluster.fake.requests
    (version,) = cluster.registered
    assert committed_uri(remote, "main") == f"models:/{MODEL}/{version}"


def test_a_rayservice_that_never_becomes_ready_fails_verify(cluster: Cluster, remote: Path) -> None:
    cluster.fake.rayservices["guessme-serve"] = rayservice("initializing.yaml")
    states = cluster.run(remote)
    assert {t: states[t] for t in ("promote", "champion")} == {"promote": "success", "champion": "success"}
    assert states["verify"] == "failed"
    promotion = git(remote, "rev-parse", "main")
    # No revert: the rollback policy is opt-in.
    assert git(remote, "log", "-1", "--format=%s", promotion).startswith("deploy(local): ")


@pytest.mark.parametrize("rollback", [False, True])
def test_a_model_that_fails_the_probe_set_fails_verify_and_is_reverted_when_asked(
    cluster: Cluster, tmp_path: Path, rollback: bool
) -> None:
    remote = make_remote(tmp_path, rollback)
    cluster.game.recognises = False
    before = git(remote, "rev-parse", "main")
    states = cluster.run(remote)
    assert states["promote"] == "success"
    assert states["verify"] == "failed"
    (version,) = cluster.registered
    log = git(remote, "log", "--format=%H %s", f"{before}..main").splitlines()
    if not rollback:
        assert len(log) == 1
        assert committed_uri(remote, "main") == f"models:/{MODEL}/{version}"
        return
    # The promotion, then its revert on top, pushed to the remote: the overlay deploys what it did before.
    revert, promotion = (line.split(" ", 1) for line in log)
    assert promotion[1] == f"deploy(local): models:/{MODEL}/{version}"
    assert revert[1] == f'Revert "{promotion[1]}"'
    body = git(remote, "log", "-1", "--format=%B", revert[0])
    assert f"This reverts commit {promotion[0]}." in body
    assert "Reason: verification failed: " in body
    assert "probe set: it recognises 0% of" in body
    assert committed_uri(remote, "main") == ""
    assert git(remote, "diff-tree", "--no-commit-id", "--name-only", "-r", "main") == OVERLAY


def test_the_kind_workflow_runs_verify_against_the_serve_service() -> None:
    """The kind job's DAG run verifies on the cluster, at the URL the scheduler pod reaches Serve by: the
    Service KubeRay names after the RayService (what the DAG also derives when serve_url is empty)."""
    from guessme_pipeline.cluster_tasks import ClusterSettings

    workflow = yaml.safe_load((REPO / ".github/workflows/kind.yaml").read_text())
    (step,) = [s for s in workflow["jobs"]["kind"]["steps"] if "airflow dags trigger" in s.get("run", "")]
    assert 'verify: "cluster"' in step["run"]
    assert "serve_url: $url" in step["run"]
    derived = ClusterSettings.from_params({"push_remote": "https://example.invalid/guessme.git"}).served_url()
    assert step["env"]["SERVE_URL"] == derived
