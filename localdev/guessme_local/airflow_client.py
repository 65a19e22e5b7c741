"""Airflow for the local platform: how `airflow standalone` is run (the `airflow` row of
guessme_local.stack's service table), and a REST client that triggers the DAG and reports each
task's progress."""

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from guessme_local.procs import HttpCheck, ServiceError

USER = "admin"


def password_file(airflow_home: Path) -> Path:
    return airflow_home / "simple_auth_manager_passwords.json.generated"


def standalone_command(airflow_venv: Path) -> list[str]:
    return [str(airflow_venv / "bin/airflow"), "standalone"]


def standalone_env(root: Path, port: int, airflow_venv: Path, path: str) -> dict[str, str]:
    """`airflow standalone` sized for a laptop, serving its UI and API on `port`; `path` is the PATH
    it is started with."""
    return {
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "pipelines/dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The defaults start ~40 processes; two cores need two task slots and one API worker.
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        # `airflow standalone` starts its components as `airflow ...` subprocesses.
        "PATH": f"{airflow_venv / 'bin'}:{path}",
    }


def health_check(port: int) -> HttpCheck:
    return HttpCheck(f"http://127.0.0.1:{port}/api/v2/monitor/health")


class AirflowClient:
    def __init__(self, url: str, airflow_home: Path) -> None:
        self.url = url
        self.airflow_home = airflow_home
        self._http = httpx.Client(base_url=url, timeout=30)

    def _login(self) -> None:
        pw_file = password_file(self.airflow_home)
        password = json.loads(pw_file.read_text())[USER]
        r = self._http.post("/auth/token", json={"username": USER, "password": password})
        r.raise_for_status()
        self._http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def _wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self._http.get(f"/api/v2/dags/{dag_id}")
            if r.is_success:
                return
            time.sleep(2)
        errors = self._http.get("/api/v2/importErrors").text
        raise ServiceError(
            f"Airflow has not parsed DAG {dag_id} after {timeout:.0f} s; import errors: {errors}"
        )

    def run_dag(
        self, dag_id: str, conf: dict, progress: Callable[[str], None], timeout: float = 1800
    ) -> dict:
        """Unpause, trigger and follow one run; raise with the failed tasks' names if it fails."""
        self._login()
        self._wait_for_dag(dag_id)
        self._http.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        r = self._http.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        r.raise_for_status()
        run_id = r.json()["dag_run_id"]
        progress(f"DAG run {run_id} triggered (follow it at {self.url}/dags/{dag_id})")
        seen: dict[str, str] = {}
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            tis = self._http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()
            for ti in sorted(tis.get("task_instances", []), key=lambda t: t.get("start_date") or "~"):
                state = ti.get("state") or "queued"
                if seen.get(ti["task_id"]) != state:
                    seen[ti["task_id"]] = state
                    progress(f"  {ti['task_id']:<12} {state}  ({time.monotonic() - started:.0f} s)")
            run = self._http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()
            if run["state"] == "success":
                return run
            if run["state"] == "failed":
                failed = [t for t, st in seen.items() if st in ("failed", "upstream_failed")]
                raise ServiceError(
                    f"DAG run {run_id} failed (tasks: {', '.join(failed)}); see the task logs in "
                    f"{self.airflow_home / 'logs'} or {self.url}"
                )
            time.sleep(2)
        raise ServiceError(f"DAG run {run_id} did not finish within {timeout:.0f} s")
