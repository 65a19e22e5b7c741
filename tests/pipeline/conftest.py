"""Fixtures for the pipeline tests (run with the Airflow environment's pytest).

Airflow reads AIRFLOW_HOME when first imported, so a per-session home is set here, before any test
module imports it. The ML work of the DAG runs in the ML interpreter, as in production.
"""

import os
from pathlib import Path

import pytest
from pipeline_helpers import make_repo

from guessme_contracts.layout import Layout

REPO = Path(__file__).resolve().parents[2]
LAYOUT = Layout.from_env()
AIRFLOW_HOME = LAYOUT.state / "test-runs" / f"airflow-{os.getpid()}"
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "pipelines" / "dags")
os.environ.setdefault("ML_PYTHON", str(LAYOUT.ml_python))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A fresh Airflow metadata database (sqlite) for this session."""
    from airflow.utils import db

    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    db.resetdb()
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def ml_mlflow_server(mlflow_server: str) -> str:
    """The shared MLflow server (tests/conftest.py starts it with the ML interpreter here)."""
    return mlflow_server
