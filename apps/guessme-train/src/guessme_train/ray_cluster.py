"""Which Ray cluster a training run joins, and where Ray Train keeps its results.

In order: the cluster RAY_ADDRESS names (a RayJob's driver on Kubernetes, the DAG under `make up`);
else the Ray head a running `make up` of this clone started (found from its state folder, so a
`dvc repro` typed by hand joins it instead of starting a second Ray on the same cores); else a
private local Ray started for this run and stopped after it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from guessme_contracts.layout import Layout

# The data travels to workers through the object store: MNIST needs little of it.
LOCAL_OBJECT_STORE_BYTES = 512 * 1024**2
# Where `make up` records the PID of `ray start --head --block` (guessme_local.stack.record:
# <state>/run/<service>.pid); tests/train/test_ray_cluster.py checks the two agree.
HEAD_PID_FILE = Path("run") / "ray.pid"
# What the head's process passes on to a driver that joins it.
_AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")


@dataclass(frozen=True)
class Connection:
    address: str  # what ray.init was given
    how: str  # for the log: which rule chose it
    started_here: bool  # a private Ray: this run must shut it down


def clone_layout() -> Layout:
    """The clone's folders (guessme_contracts.layout: GUESSME_STATE, else the clone's .guessme)."""
    return Layout.from_env()


def state_folder() -> Path:
    """The clone's state folder, where `make up` records its Ray head."""
    return clone_layout().state.resolve()


def storage_path() -> str:
    """Where Ray Train keeps run results: a folder every worker can reach. Locally the state folder;
    on a multi-node cluster set GUESSME_RAY_STORAGE to shared storage (e.g. s3://bucket/ray)."""
    if os.environ.get("GUESSME_RAY_STORAGE"):
        return os.environ["GUESSME_RAY_STORAGE"]
    return str(clone_layout().ray_results.resolve())


@dataclass(frozen=True)
class LocalHead:
    pid: int
    address: str  # host:GCS port
    env: dict[str, str]  # the head's auth settings


def running_local_head(state: Path) -> LocalHead | None:
    """The Ray head `make up` started from this state folder, if it is still running."""
    pid_file = state / HEAD_PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
    except (OSError, ValueError):
        return None  # no record, a stale PID, or another user's process
    if "start" not in argv or "--head" not in argv or "--port" not in argv:
        return None  # the PID was reused by something else
    port = argv[argv.index("--port") + 1]
    host = argv[argv.index("--node-ip-address") + 1] if "--node-ip-address" in argv else "127.0.0.1"
    env = dict(item.split("=", 1) for item in environ if "=" in item)
    if not re.fullmatch(r"\d+", port):
        return None
    return LocalHead(pid, f"{host}:{port}", {k: env[k] for k in _AUTH_VARS if k in env})


def ensure_local_token() -> None:
    """Ray 2.60's token auth refuses to start when RAY_AUTH_TOKEN_PATH names a missing file (a fresh
    clone before its first `make up`): create the token there, as guessme_local.ray_head does."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if os.environ.get("RAY_AUTH_MODE", "token") != "token" or not path or Path(path).exists():
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another run created it meanwhile
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))


def worker_runtime_env() -> dict[str, dict[str, str]]:
    """The driver's PYTHONPATH, absolute, for the workers: a joined cluster's workers then run this
    checkout's code (the DAG trains in a scratch checkout), not the code the head was started with."""
    paths = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}} if paths else {}


def choose_address() -> tuple[str, str]:
    """(address, why): RAY_ADDRESS, else this clone's running `make up` head, else "local"."""
    address = os.environ.get("RAY_ADDRESS", "")
    if address:
        return address, "RAY_ADDRESS"
    head = running_local_head(state_folder())
    if head is not None:
        # Its token, so this driver may join; RAY_ADDRESS, so Ray Train's helper processes that
        # call ray.init() on their own find this cluster and not another one on the host.
        os.environ.update({**head.env, "RAY_ADDRESS": head.address})
        return head.address, f"the running `make up` Ray head (pid {head.pid})"
    return "local", "no running cluster: a private local Ray for this run"


def connect() -> Connection:
    """ray.init() on the chosen cluster (see the module docstring)."""
    # Chosen before Ray is imported: Ray reads RAY_AUTH_MODE when it loads, so a head's auth
    # settings set later would be ignored.
    address, how = choose_address()
    import ray

    if ray.is_initialized():  # the caller connected already (benchmarks, tests)
        return Connection("", "already connected", started_here=False)
    if address != "local":
        ray.init(address=address, runtime_env=worker_runtime_env(), log_to_driver=True)
        return Connection(address, how, started_here=False)
    ensure_local_token()
    ray.init(
        address="local",
        include_dashboard=True,  # Ray Train's controller reports through it
        # 0: the OS picks a free port when the dashboard binds, so a private Ray never takes 8265 (or
        # another configured port) from a `make up`; Ray reads the bound port back and records the URL
        # (ray/dashboard/http_server_head.py run(): getsockname; ray/_private/parameter.py
        # update_pre_selected_port: "0 port means select a random port", Ray 2.60).
        dashboard_port=0,
        object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        log_to_driver=True,
    )
    return Connection(address, how, started_here=True)
