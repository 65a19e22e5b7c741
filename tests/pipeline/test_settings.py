"""The pipeline runtime's one settings object: the environment's values, the layout's defaults, a clear
error for a bad value; and a DAG run's settings built on them."""

from pathlib import Path

import pytest
from pydantic import ValidationError
from support.env import unset_env

from guessme_contracts.layout import Layout
from guessme_pipeline.settings import PipelineSettings, RunSettings

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
VARS = [
    "GUESSME_ROOT",
    "GUESSME_STATE",
    "GUESSME_GITOPS_REPO",
    "GUESSME_PLAYER_DATA",
    "ML_PYTHON",
    "GUESSME_SERVE_PORT",
    "GUESSME_PIPELINE_RUNNER",
    "GUESSME_GITOPS_BRANCH",
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return unset_env(monkeypatch, VARS)


def test_defaults_come_from_the_layout(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("GUESSME_ROOT", str(tmp_path))
    s = PipelineSettings()
    assert s.layout() == Layout.at(tmp_path)
    assert s.ml_interpreter == tmp_path / ".guessme/venvs/ml/bin/python"
    assert s.default_repo == tmp_path
    assert (s.serve_port, s.pipeline_runner, s.gitops_branch) == (8000, "local", "main")


def test_the_environment_overrides(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("GUESSME_ROOT", str(tmp_path / "clone"))
    clean_env.setenv("GUESSME_STATE", str(tmp_path / "state"))
    clean_env.setenv("GUESSME_PLAYER_DATA", str(tmp_path / "players" / "rounds.jsonl"))
    clean_env.setenv("GUESSME_GITOPS_BRANCH", "")  # empty: unset, as `or "main"` read it before
    clean_env.setenv("GUESSME_SERVE_PORT", "18000")
    s = PipelineSettings()
    assert s.ml_interpreter == tmp_path / "state/venvs/ml/bin/python"  # GUESSME_STATE moves the venvs
    assert s.layout().player_data == tmp_path / "players"
    assert (s.gitops_branch, s.serve_port) == ("main", 18000)
    clean_env.setenv("ML_PYTHON", "/opt/ml/bin/python")
    assert PipelineSettings().ml_interpreter == Path("/opt/ml/bin/python")


@pytest.mark.parametrize(
    ("name", "value"), [("GUESSME_SERVE_PORT", "eighty"), ("GUESSME_PIPELINE_RUNNER", "kubernetse")]
)
def test_a_bad_value_names_its_variable(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("GUESSME_").lower()):
        PipelineSettings()


def test_a_run_takes_its_paths_from_the_layout(clean_env: pytest.MonkeyPatch, repo: Path) -> None:
    s = RunSettings.from_params({"repo": str(repo), "env": "prod"}, "manual__2026-11-30T12:00:00+00:00")
    layout = Layout.at(repo.resolve())
    assert (s.state_dir, s.player_data) == (layout.state, layout.player_data)
    assert s.work_dir == layout.pipeline_runs / "manual__2026-11-30T12_00_00_00_00"
    assert s.layout == layout
    clean_env.setenv("GUESSME_STATE", str(repo / "elsewhere"))
    assert RunSettings.from_params({"repo": str(repo)}, "r").state_dir == repo / "elsewhere"
    with pytest.raises(ValueError, match="lower-case"):
        RunSettings.from_params({"repo": str(repo), "env": "Prod"}, "r")


def test_the_local_dags_param_defaults_are_the_runs_defaults(
    clean_env: pytest.MonkeyPatch, repo: Path
) -> None:
    """The DAG's form and RunSettings.from_params read one mapping: a run started with the form's
    defaults is the run a caller gets by leaving every key out (dag.test, the tests)."""
    from airflow.dag_processing.dagbag import DagBag

    from guessme_pipeline.settings import RUN_PARAM_DEFAULTS

    clean_env.setenv("GUESSME_ROOT", str(repo))  # the DAG's `repo` default
    dag = DagBag(dag_folder=str(REPO / "pipelines" / "dags")).dags["guessme_train_deploy"]
    form = dag.params.dump()
    assert set(form) - set(RUN_PARAM_DEFAULTS) == {"repo"}  # the working copy is PipelineSettings'
    assert {key: form[key] for key in RUN_PARAM_DEFAULTS} == dict(RUN_PARAM_DEFAULTS)
    assert RunSettings.from_params(form, "r") == RunSettings.from_params({}, "r")


def test_the_cluster_dags_param_defaults_are_the_runs_defaults(clean_env: pytest.MonkeyPatch) -> None:
    from guessme_pipeline import cluster_dag
    from guessme_pipeline.cluster_tasks import ClusterSettings
    from guessme_pipeline.settings import CLUSTER_PARAM_DEFAULTS

    clean_env.setenv("GUESSME_GITOPS_REMOTE", "https://example.invalid/guessme.git")
    form = cluster_dag.build("guessme_train_deploy_defaults").params.dump()
    # The Git remote and branch Argo CD watches are the environment's (PipelineSettings).
    assert set(form) - set(CLUSTER_PARAM_DEFAULTS) == {"push_remote", "push_branch"}
    assert {key: form[key] for key in CLUSTER_PARAM_DEFAULTS} == dict(CLUSTER_PARAM_DEFAULTS)
    assert ClusterSettings.from_params(form) == ClusterSettings.from_params({})


def test_the_data_tests_run_with_the_stages_pythonpath(tmp_path: Path) -> None:
    """The data task's PYTHONPATH is read from the checkout's dvc.yaml (`py`), not copied."""
    from guessme_pipeline.tasks import stage_pythonpath

    repo = Path(__file__).resolve().parents[2]
    paths = stage_pythonpath(repo)
    assert {"libs/guessme-core/src", "apps/guessme-train/src"} <= set(paths)
    assert all((repo / p).is_dir() for p in paths)
    (tmp_path / "dvc.yaml").write_text("vars:\n  - py: python\nstages: {}\n")
    with pytest.raises(ValueError, match="sets no PYTHONPATH"):
        stage_pythonpath(tmp_path)


def test_the_git_token_falls_back_and_never_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUESSME_GIT_TOKEN", "")  # empty: unset, so GITHUB_TOKEN is used (as before)
    monkeypatch.setenv("GITHUB_TOKEN", "gh-s3cret")
    s = PipelineSettings()
    assert s.git_token is not None
    assert s.git_token.get_secret_value() == "gh-s3cret"
    assert "gh-s3cret" not in repr(s)
    monkeypatch.setenv("GUESSME_GIT_TOKEN", "own-s3cret")
    token = PipelineSettings().git_token
    assert token is not None
    assert token.get_secret_value() == "own-s3cret"
    monkeypatch.delenv("GUESSME_GIT_TOKEN")
    monkeypatch.delenv("GITHUB_TOKEN")
    assert PipelineSettings().git_token is None
