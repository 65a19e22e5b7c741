"""Small process helpers shared by the local stack and the tests: ports, health checks, stopping."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class HttpCheck:
    """Healthy when `url` answers 2xx; `headers` is called at each check (e.g. a token read from disk)."""

    url: str
    headers: Callable[[], Mapping[str, str]] | None = None

    def __call__(self) -> bool:
        try:
            headers = dict(self.headers()) if self.headers else None
            return httpx.get(self.url, headers=headers, timeout=2).is_success
        except httpx.HTTPError:
            return False

    def __str__(self) -> str:
        return self.url


def wait_healthy(
    name: str,
    check: Callable[[], bool],
    timeout: float,
    log_file: Path | None = None,
    alive: Callable[[], bool] | None = None,
    poll_s: float = 0.3,
) -> None:
    """Poll `check` until it passes; fail, naming the service and its log, when the process dies
    first (`alive`) or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise ServiceError(f"{name} exited during start-up; see {log_file}")
        if check():
            return
        time.sleep(poll_s)
    raise ServiceError(f"{name} did not answer {check} within {timeout:.0f} s; see {log_file}")


def wait_http(
    url: str,
    name: str,
    timeout: float,
    log_file: Path | None = None,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll `url` until it answers 2xx; fail naming the service and its log."""
    wait_healthy(name, HttpCheck(url), timeout, log_file, alive)


def start_background(
    cmd: list[str], log_file: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
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
