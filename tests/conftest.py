"""Fixtures shared by every test level. Component fixtures live in each folder's conftest."""

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("GUESSME_STATE", REPO / ".guessme"))

# Session fixtures that several components share: a trained, registered model and a running serve app.
# They need the ML environment; tests/pipeline runs in Airflow's (scripts/test.sh), which has no torch.
ML_ENV = importlib.util.find_spec("torch") is not None
pytest_plugins = ["support.model_fixtures", "support.serve_fixtures"] if ML_ENV else []
collect_ignore = ["pipeline"] if ML_ENV else []


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Per-session scratch folder inside the project's state folder, not /tmp."""
    runs = STATE / "test-runs"
    for old in runs.glob("*-[0-9]*"):  # earlier sessions' folders, once their process is gone
        pid = int(old.name.rsplit("-", 1)[1])
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    path = runs / f"pid-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="session")
def mlflow_server(run_dir: Path) -> Iterator[str]:
    """A real `mlflow server` on a free port, with its own sqlite store; yields its URL."""
    from guessme_local.mlflow_server import start_mlflow
    from guessme_local.procs import free_port, stop_group

    # In Airflow's environment MLflow is not installed: run the server with the ML interpreter.
    python = sys.executable if ML_ENV else os.environ["ML_PYTHON"]
    server = start_mlflow(run_dir / "mlflow", free_port(), python=python)
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = server.url
    try:
        yield server.url
    finally:
        stop_group(server.process.pid)
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old
