"""One DAG run's settings, from the run's params (the Airflow UI form or `dag.test(run_conf=...)`)."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guessme_pipeline.overlay import overlay_path
from guessme_pipeline.publish import PushTarget


def default_repo() -> str:
    return os.environ.get("GUESSME_GITOPS_REPO") or os.environ.get("GUESSME_ROOT") or str(Path.cwd())


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

    @classmethod
    def from_params(cls, params: Mapping[str, Any], run_id: str) -> "RunSettings":
        repo = Path(params.get("repo") or default_repo()).resolve()
        if not (repo / ".git").exists():
            raise ValueError(f"repo {repo} is not a Git working copy")
        env = str(params.get("env") or "local")
        overlay_path(env)  # validates the name
        state = Path(os.environ.get("GUESSME_STATE") or repo / ".guessme")
        safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
        push = None
        if params.get("push_remote"):
            push = PushTarget(
                remote=str(params["push_remote"]),
                branch=str(params.get("push_branch") or params.get("branch") or "main"),
                pull_request=bool(params.get("pull_request", False)),
            )
        return cls(
            push=push,
            repo=repo,
            env=env,
            branch=params.get("branch") or None,
            include_player_data=bool(params.get("include_player_data", True)),
            train_on_player_data=bool(params.get("train_on_player_data", False)),
            force_promote=bool(params.get("force_promote", False)),
            work_dir=state / "pipeline-runs" / safe_run,
            state_dir=state,
        )
