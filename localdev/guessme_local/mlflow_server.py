"""A local MLflow tracking server: sqlite backend, artifacts proxied to a local folder."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from guessme_local.procs import start_background, wait_http


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen
    log_file: Path


def start_mlflow(
    state_dir: Path,
    port: int,
    timeout: float = 90.0,
    log_file: Path | None = None,
    python: str = sys.executable,
) -> MlflowServer:
    state_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_file or state_dir / "mlflow.log"
    cmd = [
        python, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{state_dir / 'mlflow.db'}",
        "--artifacts-destination", str(state_dir / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    # Job execution would start extra workers we do not use (2.7 GB instead of 0.6 GB).
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = start_background(cmd, log_file, env)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", "MLflow server", timeout, log_file, alive=lambda: proc.poll() is None)
    return MlflowServer(url, proc, log_file)
