"""`make up` / `make down`: the whole platform as local processes, with all state in .guessme/.

Order: MLflow -> Ray head -> Airflow -> the local GitOps sync, which deploys the committed overlay to
Ray Serve -> (the DAG, when the committed overlay names no model that the registry holds: it trains,
registers and promotes one by a Git commit, which the sync deploys and the DAG's last task verifies).
Each service's PID is recorded so `down` can stop it.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from guessme_contracts.deploy_status import status_path
from guessme_contracts.layout import Layout
from guessme_local import airflow_client, ray_head
from guessme_local.mlflow_server import start_mlflow
from guessme_local.overlay import committed_model_uri
from guessme_local.procs import ServiceError, port_in_use, start_background, stop_group

DAG_ID = "guessme_train_deploy"


@dataclass(frozen=True)
class Settings:
    root: Path
    state: Path
    serve_port: int
    mlflow_port: int
    ray_port: int
    dashboard_port: int
    airflow_port: int

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        root = Path(env["GUESSME_ROOT"])
        return cls(
            root=root,
            state=Path(env.get("GUESSME_STATE", root / ".guessme")),
            serve_port=int(env["GUESSME_SERVE_PORT"]),
            mlflow_port=int(env["GUESSME_MLFLOW_PORT"]),
            ray_port=int(env["GUESSME_RAY_PORT"]),
            dashboard_port=int(env["GUESSME_RAY_DASHBOARD_PORT"]),
            airflow_port=int(env["GUESSME_AIRFLOW_PORT"]),
        )

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "run"

    def ports(self) -> dict[str, int]:
        return {
            "game (Ray Serve)": self.serve_port,
            "MLflow": self.mlflow_port,
            "Ray head": self.ray_port,
            "Ray dashboard": self.dashboard_port,
            "Airflow": self.airflow_port,
        }


def say(msg: str) -> None:
    print(f"\033[1;34m[guessme]\033[0m {msg}", flush=True)


SERVICES = ("mlflow", "ray", "airflow", "sync")  # start order; stopped in reverse
STARTED: list[str] = []  # by this process: a failed start stops these, never an earlier stack's


def record(s: Settings, service: str, pid: int) -> None:
    s.pids.mkdir(parents=True, exist_ok=True)
    (s.pids / f"{service}.pid").write_text(str(pid))
    STARTED.append(service)


def recorded(s: Settings) -> dict[str, int]:
    """The PIDs `record` wrote for this clone, in start order."""
    files = ((service, s.pids / f"{service}.pid") for service in SERVICES)
    return {service: int(f.read_text()) for service, f in files if f.exists()}


def running(s: Settings) -> dict[str, int]:
    """Services of an earlier `up` of this clone whose process is still alive."""
    return {service: pid for service, pid in recorded(s).items() if Path(f"/proc/{pid}").exists()}


def up(s: Settings, detach: bool) -> None:
    if alive := running(s):
        names = ", ".join(f"{name} (pid {pid})" for name, pid in alive.items())
        raise ServiceError(f"Guessme is already running from this clone: {names}. Stop it with `make down`")
    taken = {name: port for name, port in s.ports().items() if port_in_use(port)}
    if taken:
        names = ", ".join(f"{name} port {port}" for name, port in taken.items())
        raise ServiceError(
            f"port already in use: {names}. Stop what holds it (`make down` if it is an earlier "
            "`make up`) or choose other ports, e.g. GUESSME_SERVE_PORT=8001 make up"
        )
    s.logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{s.mlflow_port}",
        "GUESSME_FRONTEND_DIST": str(s.root / "apps/frontend/dist"),
    }
    os.environ.update(env)

    say(f"starting MLflow on :{s.mlflow_port} (log: {s.logs / 'mlflow.log'})")
    mlflow = start_mlflow(s.state / "mlflow", s.mlflow_port, log_file=s.logs / "mlflow.log")
    record(s, "mlflow", mlflow.process.pid)

    say(f"starting Ray on :{s.ray_port}, dashboard :{s.dashboard_port} (log: {s.logs / 'ray-head.log'})")
    # Logical CPUs, not cores: Serve's replica (0.5) and Ray Train's two workers must fit together,
    # and on 2 cores they time-share well (training is batch work; a guess takes ~2 ms).
    head = ray_head.start_ray_head(
        s.logs,
        gcs_port=s.ray_port,
        dashboard_port=s.dashboard_port,
        num_cpus=int(os.environ.get("GUESSME_RAY_CPUS", "4")),
        env=env,
        timeout=180,
    )
    record(s, "ray", head.process.pid)
    env["RAY_ADDRESS"] = head.address

    say(f"starting Airflow on :{s.airflow_port} (log: {s.logs / 'airflow.log'})")
    airflow = airflow_client.start_airflow(s.root, s.airflow_port, s.logs / "airflow.log", env)
    record(s, "airflow", airflow.pid)

    # The sync before any DAG run: the DAG's last task verifies its promotion through the sync's status.
    say(f"starting the local GitOps sync of environments/local (log: {s.logs / 'sync.log'})")
    sync_cmd = [sys.executable, "-m", "guessme_local.sync", "--repo", str(s.root), "--env", "local"]
    sync_cmd += ["--dashboard-url", head.dashboard_url, "--serve-port", str(s.serve_port)]
    sync_cmd += ["--status-file", str(status_path(Layout.at(s.root, s.state), "local"))]
    sync = start_background(sync_cmd, s.logs / "sync.log", env)
    record(s, "sync", sync.pid)

    uri = committed_model_uri(s.root, "local")
    if not uri or not registry_has(uri, s.mlflow_port):
        reason = "no model is promoted yet" if not uri else f"{uri} is not in this MLflow registry"
        steps = "data -> train -> evaluate -> register -> promote -> verify"
        say(f"{reason}: running the Airflow DAG {DAG_ID} ({steps})")
        client = airflow_client.AirflowClient(f"http://127.0.0.1:{s.airflow_port}", s.state / "airflow")
        conf = {"env": "local", "repo": str(s.root), "force_promote": uri is not None}
        client.run_dag(DAG_ID, conf=conf, progress=say)
        uri = committed_model_uri(s.root, "local")
        if not uri:
            raise ServiceError(f"the DAG finished but promoted no model; see {s.logs / 'airflow.log'}")

    say(f"waiting for the game to serve {uri}")
    wait_for_model(s.serve_port, uri, s.logs / "sync.log")

    print_urls(s, uri)
    if detach:
        say("running in the background; stop with `make down`")
        return
    say("press Ctrl-C to stop (or `make down` from another terminal)")
    procs = {"mlflow": mlflow.process, "ray": head.process, "airflow": airflow, "sync": sync}
    watch(s, procs)  # main() stops everything on Ctrl-C, SIGTERM or a service that died


def watch(s: Settings, procs: dict[str, subprocess.Popen], poll_s: float = 1.0) -> None:
    """Stay in the foreground while the stack runs. Returns once `make down` (another terminal)
    has stopped it; raises ServiceError when a service dies on its own, so main() stops the rest
    rather than leave a half-working stack behind. Polling our own children also reaps them."""
    while True:
        for service, proc in procs.items():
            if proc.poll() is None:
                continue
            if not (s.pids / f"{service}.pid").exists():  # `down` forgets a PID before it stops it
                say("stopped by `make down`")
                return
            raise ServiceError(f"{service} exited on its own (code {proc.returncode}); see {s.logs}/")
        time.sleep(poll_s)


def registry_has(uri: str, mlflow_port: int) -> bool:
    name, _, version = uri.removeprefix("models:/").partition("/")
    r = httpx.get(
        f"http://127.0.0.1:{mlflow_port}/api/2.0/mlflow/model-versions/get",
        params={"name": name, "version": version},
        timeout=10,
    )
    return r.is_success


def wait_for_model(serve_port: int, uri: str, log_file: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"http://127.0.0.1:{serve_port}/model", timeout=5).json()
            if last.get("model_uri") == uri and last.get("model_version") is not None:
                return
        except (httpx.HTTPError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    raise ServiceError(
        f"the game does not serve {uri} after {timeout:.0f} s (last /model: {last}); see {log_file}"
    )


def print_urls(s: Settings, uri: str) -> None:
    passwords = airflow_client.password_file(s.state / "airflow")
    rows = [
        ("the game", f"http://127.0.0.1:{s.serve_port}"),
        ("API docs", f"http://127.0.0.1:{s.serve_port}/docs"),
        ("MLflow", f"http://127.0.0.1:{s.mlflow_port}"),
        ("Ray dashboard", f"http://127.0.0.1:{s.dashboard_port}"),
        ("Airflow", f"http://127.0.0.1:{s.airflow_port}  (user admin, password in {passwords})"),
    ]
    say(f"Guessme is up, serving {uri}")
    for name, url in rows:
        print(f"    {name:<14} {url}")
    print(f"    logs           {s.logs}/")


def down(s: Settings, only: list[str] | None = None) -> None:
    """Stop in reverse start order; Ray's head is stopped by its own PIDs, never `ray stop`."""
    for service, pid in reversed(recorded(s).items()):
        if only is not None and service not in only:
            continue
        say(f"stopping {service} (pid {pid})")
        # Forget the PID first: a foreground `make up` watching it then knows the stop is wanted.
        (s.pids / f"{service}.pid").unlink()
        if service == "ray":
            ray_head.stop_ray_head_pid(pid)  # its group, and the HAProxy that lives outside it
        else:
            stop_group(pid)  # each service leads its own process group


def main() -> None:
    parser = argparse.ArgumentParser(prog="guessme_local.stack")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--detach", action="store_true", help="return once healthy; stop with `down`")
    args = parser.parse_args()
    s = Settings.from_env()
    if args.command == "down":
        down(s)
        return
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        up(s, args.detach)
    except (ServiceError, httpx.HTTPError) as exc:
        print(f"\033[1;31m[guessme] error:\033[0m {exc}", file=sys.stderr)
        down(s, only=STARTED)
        sys.exit(1)
    except KeyboardInterrupt:
        say("stopping")
        down(s, only=STARTED)
        sys.exit(130)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
