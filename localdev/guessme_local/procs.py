"""Small process helpers shared by the local stack and the tests: ports, health waits, stopping."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx


class ServiceError(RuntimeError):
    """A local service failed to start; the message names the service and its log file."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_http(
    url: str,
    name: str,
    timeout: float,
    log_file: Path | None = None,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll `url` until it answers 2xx; fail naming the service and its log."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise ServiceError(f"{name} exited during start-up; see {log_file}")
        try:
            if httpx.get(url, timeout=2).is_success:
                return
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise ServiceError(f"{name} did not answer {url} within {timeout:.0f} s ({last}); see {log_file}")


def start_background(cmd: list[str], log_file: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `cmd` in its own session (so a Ctrl-C in the caller's group does not orphan parts)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, close_fds=True
        )


def stop_group(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(pid)
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def _reap(pid: int) -> None:
    """A dead child of ours stays a zombie, and so a group member, until it is waited for."""
    # Not our child (e.g. `make down` in a later process): init reaps it.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
