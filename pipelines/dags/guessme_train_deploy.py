"""guessme_train_deploy: data -> train -> evaluate -> register -> promote (a Git commit) -> champion
-> verify.

Deployment is a Git change: `promote` writes the new immutable `models:/guessme-cnn/N` into
`environments/<env>/model.env` and commits it; whatever syncs that environment (Argo CD on a cluster,
`guessme_local.sync` on one machine) makes it live. Rollback is `git revert` of that commit.
`verify` waits until the environment serves the promoted model and it recognises the probe set; with
`promote.rollback: true` (params.yaml) a failure reverts the promotion commit.

The tasks run the ML code (DVC, Ray Train, MLflow, torch) in the ML interpreter as subprocesses
(guessme_pipeline.ml): Airflow's own environment holds none of it. The task logic lives in the
`guessme_pipeline` package; this file only wires it.

On Kubernetes (the Airflow image sets GUESSME_PIPELINE_RUNNER=kubernetes) the same DAG id trains with a
RayJob and promotes by pushing to the remote Argo CD watches: guessme_pipeline.cluster_dag.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from guessme_contracts.overlay import ENV_NAME_PATTERN
from guessme_pipeline import cluster_dag, cluster_tasks, tasks
from guessme_pipeline.settings import RUN_PARAM_DEFAULTS as DEFAULTS
from guessme_pipeline.settings import RunSettings, default_repo

DAG_ID = "guessme_train_deploy"


def _settings() -> RunSettings:
    context = get_current_context()
    return RunSettings.from_params(context["params"], context["run_id"])


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # promotions also serialise in Git; one training at a time on 2 cores
    tags=["guessme", "mlops", "gitops"],
    doc_md=__doc__,
    params={
        "env": Param(
            DEFAULTS["env"], type="string", pattern=ENV_NAME_PATTERN, description="environments/<env>"
        ),
        "repo": Param(
            default_repo(), type="string", description="Git working copy: DVC data, params.yaml, overlays"
        ),
        "branch": Param(
            DEFAULTS["branch"], type="string", description="branch to promote on (empty: the checked-out one)"
        ),
        "include_player_data": Param(
            DEFAULTS["include_player_data"],
            type="boolean",
            description="evaluate on the players' labelled drawings too",
        ),
        "train_on_player_data": Param(
            DEFAULTS["train_on_player_data"],
            type="boolean",
            description="also train on the players' drawings (DVC stage `player`: a new data version)",
        ),
        "force_promote": Param(
            DEFAULTS["force_promote"],
            type="boolean",
            description="promote even if the gate says no (bootstrap / override)",
        ),
        "push_remote": Param(
            DEFAULTS["push_remote"], type="string", description="also publish to this Git remote (empty: no)"
        ),
        "push_branch": Param(
            DEFAULTS["push_branch"], type="string", description="the remote branch (empty: same as branch)"
        ),
        "pull_request": Param(
            DEFAULTS["pull_request"],
            type="boolean",
            description="open a pull request instead of pushing the branch",
        ),
        # The last task waits until the promoted model serves and passes the probe set (docs/deploy.md).
        "verify": Param(
            DEFAULTS["verify"],
            enum=["local", "cluster", "off"],
            description="where to verify: the local sync's status, the cluster's RayService, or off "
            "(nothing deploys this environment: the run then does not say that the model serves)",
        ),
        "serve_url": Param(
            DEFAULTS["serve_url"],
            type="string",
            description="the game's URL (empty: this machine's Serve port)",
        ),
    },
)
def guessme_train_deploy() -> None:
    @task
    def data() -> dict[str, Any]:
        return tasks.prepare_data(_settings())

    @task
    def train(data_info: dict[str, Any]) -> dict[str, Any]:
        return tasks.train(_settings(), data_info)

    @task
    def evaluate(data_info: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
        return tasks.evaluate(_settings(), data_info, trained)

    @task
    def register(trained: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
        return tasks.register(_settings(), trained, evaluation)

    @task
    def promote(registered: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
        try:
            return tasks.promote(_settings(), registered, evaluation)
        except tasks.GateBlocked as blocked:  # a normal outcome, not a failure: skip promote and champion
            raise AirflowSkipException(str(blocked)) from blocked

    @task
    def champion(promoted: dict[str, Any]) -> dict[str, Any]:
        if "proposed" in promoted:
            raise AirflowSkipException("a pull request was opened: nothing is deployed until it is merged")
        return tasks.mark_champion(promoted)

    @task
    def verify(promoted: dict[str, Any]) -> dict[str, Any]:
        params = get_current_context()["params"]
        if params["verify"] == "off":
            raise AirflowSkipException("verify=off: nothing checks that the promoted model serves")
        return tasks.verify(_settings(), promoted, params)

    data_info = data()
    trained = train(data_info)
    evaluation = evaluate(data_info, trained)
    registered = register(trained, evaluation)
    promoted = promote(registered, evaluation)
    champion(promoted) >> verify(promoted)  # last: the run is green only if the promoted model serves


if cluster_tasks.runs_on_kubernetes():
    cluster_dag.build(DAG_ID)
else:
    guessme_train_deploy()
