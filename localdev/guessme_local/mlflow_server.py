"""A local MLflow tracking server: sqlite backend, artifacts proxied to a local folder."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from guessme_local.procs import HttpCheck, start_background, stop_group, wait_healthy

# Job execution would start extra workers we do not use (2.7 GB instead of 0.6 GB).
MLFLOW_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen[bytes]
    log_file: Path


def mlflow_command(state_dir: Path, port: int, python: str = sys.executable) -> list[str]:
    """`mlflow server` with its database and artifacts in `state_dir` (which must exist)."""
    return [
        python, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{state_dir / 'mlflow.db'}",
        "--artifacts-destination", str(state_dir / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip


def health_check(port: int) -> HttpCheck:
    return HttpCheck(f"http://127.0.0.1:{port}/health")


def start_mlflow(
    state_dir: Path,
    port: int,
    timeout: float = 90.0,
    log_file: Path | None = None,
    python: str = sys.executable,
) -> MlflowServer:
    """A server of its own for a test or a script (`make up` declares its own in guessme_local.stack)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_file or state_dir / "mlflow.log"
    proc = start_background(mlflow_command(state_dir, port, python), log_file, {**os.environ, **MLFLOW_ENV})
    try:
        wait_healthy(
            "MLflow server", health_check(port), timeout, log_file, alive=lambda: proc.poll() is None
        )
    except Exception:
        stop_group(proc.pid)
        raise
    return MlflowServer(f"http://127.0.0.1:{port}", proc, log_file)
