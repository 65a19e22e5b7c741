"""The DAG end to end with `dag.test()`: a real MLflow server, real Ray Train (a local Ray started by the
training step), real DVC-stage commands and a temporary Git clone of the project. Tiny data, 1 epoch.

The pipeline trains what the branch head holds, in a scratch checkout: parameter changes a test wants the
pipeline to see are committed (and undone afterwards), and uncommitted edits must survive untouched."""

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pipeline_helpers import OVERLAY, committed_uri, git, snapshot_repo

from guessme_contracts.layout import Layout

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "guessme_train_deploy"
TASKS = ["data", "train", "evaluate", "register", "promote", "champion", "verify"]

RunDag = Callable[..., dict[str, str]]


def set_param(repo: Path, section: str, key: str, value: str) -> None:
    """Edit one `section.key` of the clone's params.yaml in place (keeps comments)."""
    path = repo / "params.yaml"
    text = path.read_text()
    block = re.search(rf"(?ms)^{section}:\n(.*?)(?=^\S|\Z)", text)
    assert block is not None, f"no {section}: in params.yaml"
    body = re.sub(rf"(?m)^(\s+{key}:\s*)[^#\n]*?(\s*(#.*)?)$", rf"\g<1>{value}\g<2>", block.group(1), count=1)
    assert body != block.group(1) or f"{key}: {value}" in body, f"no {section}.{key} in params.yaml"
    path.write_text(text[: block.start(1)] + body + text[block.end(1) :])


@contextlib.contextmanager
def committed_params(repo: Path, changes: dict[tuple[str, str], str]) -> Iterator[str]:
    """Commit params.yaml edits on the branch; yield that commit; then reset the branch to where it was."""
    base = git(repo, "rev-parse", "HEAD")
    for (section, key), value in changes.items():
        set_param(repo, section, key, value)
    git(repo, "commit", "--quiet", "-m", f"params: {changes}", "--", "params.yaml")
    try:
        yield git(repo, "rev-parse", "HEAD")
    finally:
        git(repo, "reset", "--quiet", "--hard", base)


def worktrees(repo: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    return [line.removeprefix("worktree ") for line in out.splitlines() if line.startswith("worktree ")]


def registered_versions(mlflow_url: str) -> list[int]:
    r = httpx.get(
        f"{mlflow_url}/api/2.0/mlflow/model-versions/search",
        params={"filter": "name='guessme-cnn'"},
        timeout=10,
    )
    r.raise_for_status()
    return sorted(int(v["version"]) for v in r.json().get("model_versions", []))


@pytest.mark.integration
def test_dag_folder_imports_without_errors() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "pipelines" / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]  # (get_dag would read the metadata database)
    assert sorted(dag.task_ids) == sorted(TASKS)
    assert {t.task_id for t in dag.get_task("promote").upstream_list} == {"register", "evaluate"}


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of the project with a fresh overlay (no model yet) and tiny training params, committed."""
    repo = snapshot_repo(tmp_path_factory.mktemp("pipeline") / "guessme")
    # What `scripts/setup.sh ml` does in a fresh clone: link the cached ML environment (dvc.yaml uses it).
    venv = Layout.at(repo).ml_venv
    venv.parent.mkdir(parents=True)
    venv.symlink_to(Path(os.environ["ML_PYTHON"]).parents[1])
    set_param(repo, "prepare", "limit", "2000")
    set_param(repo, "train", "epochs", "1")
    git(repo, "commit", "--quiet", "-am", "tiny training for tests")
    assert committed_uri(repo) == ""
    return repo


@pytest.fixture(scope="module")
def run_dag(airflow_db: Path, ml_mlflow_server: str, clone: Path) -> Iterator[RunDag]:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "pipelines" / "dags")).dags[DAG_ID]
    saved = {k: os.environ.get(k) for k in ("RAY_ADDRESS", "GUESSME_PLAYER_DATA")}
    os.environ.pop("RAY_ADDRESS", None)  # the training step starts its own local Ray
    os.environ["GUESSME_PLAYER_DATA"] = str(clone / "data" / "player" / "rounds.jsonl")

    def run(**conf: Any) -> dict[str, str]:
        # Nothing serves this clone: `verify` is off (tests/gitops/test_verified_deploy.py covers it).
        dag_run = dag.test(run_conf={"repo": str(clone), "env": "local", "verify": "off", **conf})
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}

    yield run
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def champion_version(mlflow_url: str) -> int:
    r = httpx.get(
        f"{mlflow_url}/api/2.0/mlflow/registered-models/alias",
        params={"name": "guessme-cnn", "alias": "champion"},
        timeout=10,
    )
    r.raise_for_status()
    return int(r.json()["model_version"]["version"])


@pytest.fixture(scope="module")
def first_run(run_dag: RunDag, clone: Path) -> dict[str, Any]:
    before = git(clone, "rev-parse", "HEAD")
    states = run_dag()
    return {"before": before, "states": states, "after": git(clone, "rev-parse", "HEAD")}


@pytest.mark.integration
def test_first_run_commits_only_the_uri_line(
    first_run: dict[str, Any], clone: Path, ml_mlflow_server: str
) -> None:
    assert first_run["states"] == {**dict.fromkeys(TASKS, "success"), "verify": "skipped"}
    head = first_run["after"]
    assert head != first_run["before"]
    assert git(clone, "rev-parse", "HEAD^") == first_run["before"]
    assert git(clone, "diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD") == OVERLAY
    diff = git(clone, "diff", "--unified=0", "HEAD^", "HEAD").splitlines()
    changed = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-MODEL_URI=", "+MODEL_URI=models:/guessme-cnn/1"]
    message = git(clone, "log", "-1", "--format=%B")
    assert "Model-Version: 1" in message
    assert re.search(r"MLflow-Run: [0-9a-f]{32}", message)
    assert re.search(r"test_accuracy=0\.\d{4}", message)
    assert champion_version(ml_mlflow_server) == 1
    # The DVC stages ran in a scratch checkout (removed) that filled this copy's DVC cache.
    assert git(clone, "status", "--porcelain", "--untracked-files=no") == ""
    assert worktrees(clone) == [str(clone)]
    assert any((clone / ".dvc" / "cache" / "files").rglob("*"))


@pytest.mark.integration
def test_second_run_without_a_better_model_commits_nothing(
    first_run: dict[str, Any], run_dag: RunDag, clone: Path, ml_mlflow_server: str
) -> None:
    """Same commit, same data: DVC restores the model (and its registration) from the shared cache; it does
    not beat the deployed one. A developer's uncommitted edit is neither used nor touched."""
    original = (clone / "params.yaml").read_text()
    set_param(clone, "train", "lr", "-1.0")  # would fail training if the pipeline read the working tree
    edited = (clone / "params.yaml").read_text()
    try:
        states = run_dag()
        assert (clone / "params.yaml").read_text() == edited
    finally:
        (clone / "params.yaml").write_text(original)
    assert states["register"] == "success"  # every trained model is recorded, promoted or not
    assert states["promote"] == "skipped"
    assert states["champion"] == "skipped"
    assert registered_versions(ml_mlflow_server) == [1]  # nothing retrained, nothing registered twice
    assert git(clone, "rev-parse", "HEAD") == first_run["after"]
    assert committed_uri(clone) == "models:/guessme-cnn/1"


@pytest.mark.integration
def test_training_failure_commits_nothing(first_run: dict[str, Any], run_dag: RunDag, clone: Path) -> None:
    # lr -1 the optimiser refuses; the plain backend fails fast (the first run covers Ray Train).
    with committed_params(clone, {("train", "lr"): "-1.0", ("train", "backend"): "plain"}) as params_commit:
        states = run_dag(force_promote=True)
        assert git(clone, "rev-parse", "HEAD") == params_commit
        assert committed_uri(clone) == "models:/guessme-cnn/1"
    assert states["train"] == "failed"
    assert {states[t] for t in ("evaluate", "register", "promote", "champion")} == {"upstream_failed"}
    assert worktrees(clone) == [str(clone)]  # the failed task removed the scratch checkout


@pytest.mark.integration
def test_gate_blocks_a_worse_model(first_run: dict[str, Any], run_dag: RunDag, clone: Path) -> None:
    # lr 1e-5 barely moves from random weights in one epoch; the plain backend saves Ray's start-up.
    worse = {("train", "lr"): "0.00001", ("train", "backend"): "plain"}
    with committed_params(clone, worse) as params_commit:
        states = run_dag()
        assert git(clone, "rev-parse", "HEAD") == params_commit
        assert committed_uri(clone) == "models:/guessme-cnn/1"
    assert states["evaluate"] == "success"
    assert states["promote"] == "skipped"
    assert git(clone, "status", "--porcelain", "--untracked-files=no") == ""
