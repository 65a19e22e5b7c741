"""The DAG on Kubernetes: train (a RayJob from the repository's manifest) -> register (in the in-cluster
MLflow) -> evaluate (the gate) -> promote (a commit pushed to the remote Argo CD watches) -> champion
-> verify (the RayService Ready, its /model serving the promoted version, the probe set recognised; with
`promote.rollback: true` a failure pushes the revert). A run is green only when the promoted model serves.

Built by pipelines/dags/guessme_train_deploy.py when the Airflow image says the tasks run on Kubernetes
(GUESSME_PIPELINE_RUNNER=kubernetes); the local DAG there is unchanged. The task logic lives in
guessme_pipeline.cluster_tasks; this module only wires it.
"""

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from guessme_contracts.overlay import ENV_NAME_PATTERN
from guessme_pipeline import cluster_tasks, tasks
from guessme_pipeline.settings import CLUSTER_PARAM_DEFAULTS as DEFAULTS
from guessme_pipeline.settings import PipelineSettings

K8S_CONN_ID = cluster_tasks.K8S_CONN_ID


def _settings() -> cluster_tasks.ClusterSettings:
    return cluster_tasks.ClusterSettings.from_params(get_current_context()["params"])


def build(dag_id: str) -> DAG:
    settings = PipelineSettings()
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,  # one training RayJob at a time; promotions also serialise in Git
        tags=["guessme", "mlops", "gitops", "kubernetes"],
        doc_md=__doc__,
        params={
            "env": Param(
                DEFAULTS["env"], type="string", pattern=ENV_NAME_PATTERN, description="environments/<env>"
            ),
            "push_remote": Param(
                settings.gitops_remote,
                type="string",
                description="the Git remote Argo CD watches (GUESSME_GITOPS_REMOTE)",
            ),
            "push_branch": Param(
                settings.gitops_branch, type="string", description="the branch Argo CD tracks"
            ),
            "pull_request": Param(
                DEFAULTS["pull_request"],
                type="boolean",
                description="open a pull request instead of pushing the branch",
            ),
            "force_promote": Param(
                DEFAULTS["force_promote"],
                type="boolean",
                description="promote even if the gate says no (bootstrap / override)",
            ),
            "rayjob_timeout_s": Param(
                DEFAULTS["rayjob_timeout_s"], type="integer", minimum=60, description="training time limit"
            ),
            "verify": Param(
                DEFAULTS["verify"],
                enum=["cluster", "off"],
                description="wait until the RayService serves the promoted model and it passes the probe "
                "set, or off (the run then does not say that the model serves)",
            ),
            "serve_url": Param(
                DEFAULTS["serve_url"],
                type="string",
                description="Serve as this scheduler pod reaches it (empty: the RayService's serve Service)",
            ),
        },
    ) as dag:

        @task
        def train() -> dict[str, Any]:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            run_id = str(get_current_context()["run_id"])
            return cluster_tasks.train(_settings(), run_id, KubernetesHook(conn_id=K8S_CONN_ID))

        @task
        def register(trained: dict[str, Any]) -> dict[str, Any]:
            return cluster_tasks.register(trained)

        @task
        def evaluate(registered: dict[str, Any]) -> dict[str, Any]:
            return cluster_tasks.evaluate(_settings(), registered)

        @task
        def promote(registered: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
            try:
                return cluster_tasks.promote(_settings(), registered, evaluation)
            except tasks.GateBlocked as blocked:  # a normal outcome: skip promote and champion
                raise AirflowSkipException(str(blocked)) from blocked

        @task
        def champion(promoted: dict[str, Any]) -> dict[str, Any]:
            if promoted.get("proposed") is not None:
                raise AirflowSkipException("a pull request was opened: nothing deploys until it is merged")
            return tasks.mark_champion(promoted)

        @task
        def verify(promoted: dict[str, Any]) -> dict[str, Any]:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            if get_current_context()["params"]["verify"] == "off":
                raise AirflowSkipException("verify=off: nothing checks that the promoted model serves")
            if promoted.get("proposed") is not None:
                raise AirflowSkipException("a pull request was opened: nothing deploys until it is merged")
            return cluster_tasks.verify_promotion(_settings(), promoted, KubernetesHook(conn_id=K8S_CONN_ID))

        registered = register(train())
        promoted = promote(registered, evaluate(registered))
        champion(promoted) >> verify(promoted)  # last: the run is green only if the promoted model serves
    return dag
