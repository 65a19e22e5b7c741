"""`make up` / `make down`: the whole platform as local processes, with all state in the clone's state folder.

`services` is the table of what runs (like a compose file): MLflow, the Ray head (Ray Serve and the
game run inside it), Airflow, and the local GitOps sync, which deploys the committed overlay to Ray
Serve. guessme_local.supervisor starts them in dependency order, each healthy before the next, and
stops them in reverse. Then, when the committed overlay names no model that the registry holds, the
DAG runs (data -> train -> evaluate -> register -> promote by a Git commit, which the sync deploys ->
verify), and `up` waits until the game serves the committed model.
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
from pydantic import ValidationError

from guessme_contracts.deploy_status import status_path
from guessme_contracts.layout import Layout
from guessme_contracts.model_uri import ModelRef
from guessme_contracts.overlay import OverlayError, committed_model_uri
from guessme_local import airflow_client, mlflow_server, ray_head
from guessme_local.procs import ServiceError, port_in_use
from guessme_local.settings import LocalSettings
from guessme_local.supervisor import Service, Supervisor

DAG_ID = "guessme_train_deploy"
ENV = "local"


def say(msg: str) -> None:
    print(f"\033[1;34m[guessme]\033[0m {msg}", flush=True)


def services(s: LocalSettings) -> list[Service]:
    """What `make up` runs. Building the table starts nothing."""
    # The DAG's tasks and the sync talk to this clone's Ray head, not another one on the host.
    joins_ray = {"RAY_ADDRESS": s.ray_address}
    sync = [sys.executable, "-m", "guessme_local.sync", "--repo", str(s.root), "--env", ENV]
    sync += ["--dashboard-url", s.dashboard_url, "--serve-port", str(s.serve_port)]
    sync += ["--status-file", str(status_path(Layout.at(s.root, s.state), ENV))]
    return [
        Service(
            "mlflow",
            mlflow_server.mlflow_command(s.mlflow_dir, s.mlflow_port),
            env=mlflow_server.MLFLOW_ENV,
            health=mlflow_server.health_check(s.mlflow_port),
            folders=(s.mlflow_dir,),
            about=f"on :{s.mlflow_port}",
        ),
        Service(
            "ray",
            ray_head.head_command(
                gcs_port=s.ray_port,
                dashboard_port=s.dashboard_port,
                num_cpus=s.ray_cpus,
                temp_dir=s.ray_tmpdir,
            ),
            env=ray_head.head_env(ray_head.haproxy_dir_for(s.state)),
            health=ray_head.dashboard_check(s.dashboard_url),
            # Serve's replicas load models from MLflow: its URL is in their environment.
            depends_on=("mlflow",),
            stop=ray_head.stop_ray_head_pid,  # its group, and the HAProxy that lives outside it
            start_timeout=180,
            folders=(s.ray_tmpdir,) if s.ray_tmpdir else (),
            about=f"on :{s.ray_port}, dashboard :{s.dashboard_port}",
        ),
        Service(
            "airflow",
            airflow_client.standalone_command(s.layout.airflow_venv),
            env={
                **airflow_client.standalone_env(
                    s.root, s.airflow_port, s.layout.airflow_venv, os.environ["PATH"]
                ),
                **joins_ray,
            },
            health=airflow_client.health_check(s.airflow_port),
            depends_on=("mlflow", "ray"),
            start_timeout=240,
            about=f"on :{s.airflow_port}",
        ),
        # Before any DAG run: the DAG's last task verifies its promotion through the sync's status.
        Service("sync", sync, env=joins_ray, depends_on=("ray",), about=f"of environments/{ENV}"),
    ]


def supervisor(s: LocalSettings) -> Supervisor:
    return Supervisor(services(s), s.pids, s.logs)


def running(s: LocalSettings) -> dict[str, int]:
    """Services of an earlier `up` of this clone whose process is still alive."""
    return supervisor(s).running()


def up(s: LocalSettings, sup: Supervisor, detach: bool) -> None:
    if alive := sup.running():
        names = ", ".join(f"{name} (pid {pid})" for name, pid in alive.items())
        raise ServiceError(f"Guessme is already running from this clone: {names}. Stop it with `make down`")
    taken = {name: port for name, port in s.ports().items() if port_in_use(port)}
    if taken:
        names = ", ".join(f"{name} port {port}" for name, port in taken.items())
        raise ServiceError(
            f"port already in use: {names}. Stop what holds it (`make down` if it is an earlier "
            "`make up`) or choose other ports, e.g. GUESSME_SERVE_PORT=8001 make up"
        )
    # This process talks to the same MLflow (the registry check), and Ray needs its token to exist.
    os.environ.update({"MLFLOW_TRACKING_URI": s.mlflow_url, **ray_head.ensure_auth_token()})
    procs = sup.start_all(os.environ, say)

    uri = committed_model_uri(s.root, ENV)
    if not uri or not registry_has(uri, s.mlflow_url):
        reason = "no model is promoted yet" if not uri else f"{uri} is not in this MLflow registry"
        steps = "data -> train -> evaluate -> register -> promote -> verify"
        say(f"{reason}: running the Airflow DAG {DAG_ID} ({steps})")
        client = airflow_client.AirflowClient(s.airflow_url, s.airflow_home)
        conf = {"env": ENV, "repo": str(s.root), "force_promote": uri is not None}
        client.run_dag(DAG_ID, conf=conf, progress=say)
        uri = committed_model_uri(s.root, ENV)
        if not uri:
            raise ServiceError(f"the DAG finished but promoted no model; see {sup.log_file('airflow')}")

    say(f"waiting for the game to serve {uri}")
    wait_for_model(s.game_url, uri, sup.log_file("sync"))

    print_urls(s, uri)
    if detach:
        say("running in the background; stop with `make down`")
        return
    say("press Ctrl-C to stop (or `make down` from another terminal)")
    sup.watch(procs)  # main() stops everything on Ctrl-C, SIGTERM or a service that died
    say("stopped by `make down`")


def registry_has(uri: str, mlflow_url: str) -> bool:
    model = ModelRef.parse(uri)
    r = httpx.get(
        f"{mlflow_url}/api/2.0/mlflow/model-versions/get",
        params={"name": model.name, "version": str(model.version)},
        timeout=10,
    )
    return r.is_success


def wait_for_model(game_url: str, uri: str, log_file: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{game_url}/model", timeout=5).json()
            if last.get("model_uri") == uri and last.get("model_version") is not None:
                return
        except (httpx.HTTPError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    raise ServiceError(
        f"the game does not serve {uri} after {timeout:.0f} s (last /model: {last}); see {log_file}"
    )


def print_urls(s: LocalSettings, uri: str) -> None:
    passwords = airflow_client.password_file(s.airflow_home)
    rows = [
        ("the game", s.game_url),
        ("API docs", f"{s.game_url}/docs"),
        ("MLflow", s.mlflow_url),
        ("Ray dashboard", s.dashboard_url),
        ("Airflow", f"{s.airflow_url}  (user admin, password in {passwords})"),
    ]
    say(f"Guessme is up, serving {uri}")
    for name, url in rows:
        print(f"    {name:<14} {url}")
    print(f"    logs           {s.logs}/")


def main() -> None:
    parser = argparse.ArgumentParser(prog="guessme_local.stack")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--detach", action="store_true", help="return once healthy; stop with `down`")
    args = parser.parse_args()
    try:
        s = LocalSettings()
    except ValidationError as exc:  # e.g. a GUESSME_*_PORT that is not a usable port
        print(f"\033[1;31m[guessme] error:\033[0m the environment's settings: {exc}", file=sys.stderr)
        sys.exit(2)
    sup = supervisor(s)
    if args.command == "down":
        sup.stop(say)  # Ray's head by its own PIDs, never `ray stop`
        return
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        up(s, sup, args.detach)
    except (ServiceError, OverlayError, httpx.HTTPError) as exc:
        print(f"\033[1;31m[guessme] error:\033[0m {exc}", file=sys.stderr)
        sup.stop(say, only=sup.started)
        sys.exit(1)
    except KeyboardInterrupt:
        say("stopping")
        sup.stop(say, only=sup.started)
        sys.exit(130)
    except BaseException:
        sup.stop(say, only=sup.started)  # an unexpected error: leave nothing running, show the trace
        raise


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
