"""`dvc repro` end to end on a tiny subset, in a fresh git repository made from this one:
fetch -> prepare -> train (Ray Train, 2 workers) -> evaluate -> register in a real MLflow server;
then a second `dvc repro` does nothing, and `dvc push`/`dvc pull` round-trip the data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from support.repo_snapshot import git, snapshot_repo

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("GUESSME_STATE", REPO / ".guessme"))


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def clone(run_dir: Path) -> Path:
    """What a clone of the project holds, with tiny params, in a new git repo; the ML venv linked as
    `scripts/setup.sh ml` links it in a fresh clone."""
    repo = snapshot_repo(run_dir / "dvc-clone", model_uri=None)
    (repo / ".guessme/venvs").mkdir(parents=True)
    (repo / ".guessme/venvs/ml").symlink_to((STATE / "venvs/ml").resolve())
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["prepare"]["limit"] = 400
    params["train"].update(epochs=1, backend="ray", num_workers=2)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(repo, "commit", "-qam", "test: tiny pipeline")
    return repo


@pytest.fixture(scope="module")
def env(clone: Path, mlflow_server: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "RAY_ADDRESS"))}
    return {
        **base,
        # No `python` on PATH: the stage commands must name their interpreter.
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "GUESSME_STATE": str(clone / ".guessme"),
        "GUESSME_DOWNLOAD_CACHE": str(STATE / "downloads"),  # the npm tarball, shared between clones
        "MLFLOW_TRACKING_URI": mlflow_server,
        "RAY_ADDRESS": "local",
    }


def dvc(args: list[str], clone: Path, env: dict[str, str]) -> str:
    return run([sys.executable, "-m", "dvc", *args], clone, env)


def versions(mlflow_server: str) -> list[int]:
    return sorted(
        int(v.version) for v in MlflowClient(mlflow_server).search_model_versions("name='guessme-cnn'")
    )


def test_repro_runs_every_stage_and_registers_a_version(
    clone: Path, env: dict[str, str], mlflow_server: str
) -> None:
    before = versions(mlflow_server)
    out = dvc(["repro"], clone, env)
    for stage in ("fetch", "prepare", "train", "evaluate", "register"):
        assert f"Running stage '{stage}'" in out
    assert "held-out test accuracy" in out
    assert "[ray train] epoch 1/1" in out  # trained by Ray Train workers
    # Each worker runs as many torch threads as the CPUs it reserved; the log reports the scale.
    assert "[train] ray: 2 worker(s) x 1 torch thread(s) on cpu" in out
    assert "[train] outside the epochs: python start and imports" in out

    registered = json.loads((clone / "reports/registered.json").read_text())
    assert registered["version"] not in before
    assert versions(mlflow_server) == sorted([*before, registered["version"]])
    metrics = json.loads((clone / "metrics.json").read_text())
    assert registered["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    for plot in ("plots/confusion.csv", "plots/learning_curves.csv", "figures/confusion_matrix.png"):
        assert (clone / "reports" / plot).stat().st_size > 0

    # The version's data version is the one DVC recorded, and the commit is the clone's HEAD.
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    dvc_md5 = {o["path"]: o["md5"] for o in lock["stages"]["prepare"]["outs"]}
    run_tags = MlflowClient(mlflow_server).get_run(registered["run_id"]).data.tags
    assert run_tags["data.md5.train"] == dvc_md5["data/prepared/train.npz"]
    assert run_tags["data.md5.test"] == dvc_md5["data/prepared/test.npz"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True
    ).stdout.strip()
    assert run_tags["git.commit"] == head


def test_second_repro_does_nothing(clone: Path, env: dict[str, str], mlflow_server: str) -> None:
    if not (clone / "dvc.lock").exists():
        pytest.skip("the first repro failed")
    before = versions(mlflow_server)
    out = dvc(["repro"], clone, env)
    assert "Running stage" not in out
    assert "up to date" in out
    assert versions(mlflow_server) == before


def test_push_and_pull_round_trip_the_data(clone: Path, env: dict[str, str]) -> None:
    if not (clone / "dvc.lock").exists():
        pytest.skip("the first repro failed")
    dvc(["push"], clone, env)
    remote = clone / ".guessme/dvc-remote"  # .dvc/config's relative url
    assert any(remote.rglob("*")), "dvc push stored nothing in the local remote"
    prepared = clone / "data/prepared/train.npz"
    original = prepared.read_bytes()
    prepared.unlink()
    shutil.rmtree(clone / ".dvc/cache")
    dvc(["pull"], clone, env)
    assert prepared.read_bytes() == original
    assert "up to date" in dvc(["status"], clone, env)
