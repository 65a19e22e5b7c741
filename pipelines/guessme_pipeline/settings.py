"""The pipeline runtime's settings: one object read from the environment, and one DAG run's settings.

`PipelineSettings` is what the Airflow worker's environment says (scripts/lib.sh exports it locally,
the Airflow chart's values on Kubernetes), read once per use with pydantic-settings, so a wrong value
fails with the variable's name. Every path default comes from guessme_contracts.layout: nothing here
computes one of its own. `RunSettings` is one DAG run's, from the run's params (the Airflow UI form or
`dag.test(run_conf=...)`).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from guessme_contracts.layout import LOCAL_PORTS, Layout, checkout_root
from guessme_contracts.overlay import check_env_name

# A pushed commit reaches the cluster when Argo CD next polls Git: argocd-cm `timeout.reconciliation`
# (120 s) plus up to `timeout.reconciliation.jitter` (60 s), the defaults of Argo CD v3.5.1
# (docs/operator-manual/argocd-cm.yaml). Verification waits that long on top of promote.verify_timeout_s.
ARGOCD_POLL_S = 180.0


# A DAG run's parameter defaults, owned here: the DAGs build their `Param`s' defaults from these
# (pipelines/dags/guessme_train_deploy.py, guessme_pipeline.cluster_dag), and `from_params` falls back
# to them for a key its caller (a test, `dag.test(run_conf=...)`) leaves out. The Git remote, branch and
# working copy are not here: their defaults are PipelineSettings' (the environment's).
RUN_PARAM_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "env": "local",
        "branch": "",
        "include_player_data": True,
        # Off by default: the gate's player-drawing check is only fair on drawings not trained on.
        "train_on_player_data": False,
        "force_promote": False,
        "push_remote": "",
        "push_branch": "",
        "pull_request": False,
        "verify": "local",
        "serve_url": "",
    }
)
# The Kubernetes DAG's (guessme_pipeline.cluster_dag): it verifies on the cluster and trains in a RayJob.
CLUSTER_PARAM_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "env": RUN_PARAM_DEFAULTS["env"],
        "pull_request": RUN_PARAM_DEFAULTS["pull_request"],
        "force_promote": RUN_PARAM_DEFAULTS["force_promote"],
        "rayjob_timeout_s": 3600,
        "verify": "cluster",
        "serve_url": "",
    }
)


@dataclass(frozen=True)
class PushTarget:
    """Where a promotion is published (guessme_pipeline.publish)."""

    remote: str
    branch: str  # the remote branch the environment tracks
    pull_request: bool = False


class PipelineSettings(BaseSettings):
    """The pipeline's environment. Each field reads GUESSME_<NAME> unless it names another variable;
    an empty variable counts as unset."""

    model_config = SettingsConfigDict(env_prefix="GUESSME_", env_ignore_empty=True, frozen=True)

    root: Path = Field(default_factory=checkout_root, description="the clone the stack runs from")
    state: Path | None = Field(default=None, description="its state folder; unset: the layout's default")
    gitops_repo: Path | None = Field(default=None, description="the working copy the local DAG promotes in")
    player_data: Path | None = Field(
        default=None, description="the players' rounds; unset: the layout's default"
    )
    ml_python: Path | None = Field(
        default=None, validation_alias="ML_PYTHON", description="the ML interpreter; unset: the layout's"
    )
    serve_port: int = Field(default=LOCAL_PORTS["GUESSME_SERVE_PORT"], description="the local game's port")
    # Kubernetes: the Airflow image sets "kubernetes" (platform/airflow/Dockerfile).
    pipeline_runner: Literal["local", "kubernetes"] = "local"
    gitops_remote: str = Field(default="", description="the Git remote Argo CD watches")
    gitops_branch: str = "main"
    gitops_sync_wait_s: float = Field(default=ARGOCD_POLL_S, ge=0)
    ray_namespace: str = "guessme"
    rayjob_poll_seconds: float = Field(default=10.0, gt=0)
    # Publishing (guessme_pipeline.publish): the token only ever reaches git through an askpass helper.
    git_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GUESSME_GIT_TOKEN", "GITHUB_TOKEN")
    )
    github_repo: str = Field(default="", description="owner/name; unset: read from the remote's URL")
    github_api_url: str = Field(default="https://api.github.com", validation_alias="GITHUB_API_URL")

    def layout(self, repo: Path | None = None) -> Layout:
        """The layout of `repo` (default: the clone) with this environment's overrides."""
        return Layout.at(repo or self.root, self.state, self.player_data)

    @property
    def default_repo(self) -> Path:
        """The Git working copy the local DAG trains and promotes in, unless a run names one."""
        return self.gitops_repo or self.root

    @property
    def ml_interpreter(self) -> Path:
        """$ML_PYTHON (scripts/lib.sh exports it), else the clone's linked ML environment."""
        return self.ml_python or self.layout().ml_python


def default_repo() -> str:
    """The DAG form's default `repo` (a string: Airflow params are JSON)."""
    return str(PipelineSettings().default_repo)


@dataclass(frozen=True)
class RunSettings:
    repo: Path  # the developer's Git working copy: its branch is trained and promoted, its tree left alone
    env: str
    branch: str | None  # None: the branch checked out in `repo`
    include_player_data: bool  # evaluate on the players' labelled drawings
    train_on_player_data: bool  # also add them to the training split (a new DVC data version)
    force_promote: bool  # promote even when the gate says no (bootstrap, or an operator's decision)
    work_dir: Path  # this run's scratch files (step results, the scratch checkout the DVC stages run in)
    state_dir: Path  # the working copy's state folder (DVC stages' download cache, Ray results)
    push: PushTarget | None = None  # publish the promotion to a remote (optional)
    player_data: Path | None = None  # the players' rounds folder; None: the layout's for `repo`

    @property
    def layout(self) -> Layout:
        return Layout.at(self.repo, self.state_dir, self.player_data)

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], run_id: str, settings: PipelineSettings | None = None
    ) -> "RunSettings":
        settings = settings or PipelineSettings()
        params = {**RUN_PARAM_DEFAULTS, **params}  # a caller (a test, dag.test) may leave keys out
        repo = Path(params.get("repo") or settings.default_repo).resolve()
        if not (repo / ".git").exists():
            raise ValueError(f"repo {repo} is not a Git working copy")
        env = check_env_name(str(params["env"] or RUN_PARAM_DEFAULTS["env"]))
        layout = settings.layout(repo)
        safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
        push = None
        if params.get("push_remote"):
            push = PushTarget(
                remote=str(params["push_remote"]),
                branch=str(params.get("push_branch") or params.get("branch") or "main"),
                pull_request=bool(params["pull_request"]),
            )
        return cls(
            push=push,
            repo=repo,
            env=env,
            branch=params.get("branch") or None,
            include_player_data=bool(params["include_player_data"]),
            train_on_player_data=bool(params["train_on_player_data"]),
            force_promote=bool(params["force_promote"]),
            work_dir=layout.pipeline_runs / safe_run,
            state_dir=layout.state,
            player_data=layout.player_data,
        )
