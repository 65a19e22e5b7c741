"""Services declared as data, and one supervisor that runs them (what `make up` / `make down` use).

A `Service` is a row of a table, like a compose file's service: its command, its environment, its
health check, what it depends on and how it is stopped. The `Supervisor` starts the rows in
dependency order (the table's order among peers), waits for each to be healthy before starting the
next (compose's `depends_on: condition: service_healthy`), and stops them in reverse. Each service's
PID is recorded in a folder, so another process (`make down`, `make status`) can find and stop it.
"""

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from guessme_local.procs import ServiceError, start_background, stop_group, wait_healthy


@dataclass(frozen=True)
class Service:
    name: str
    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)  # on top of the supervisor's base environment
    health: Callable[[], bool] | None = None  # None: healthy as soon as it runs
    depends_on: tuple[str, ...] = ()
    stop: Callable[[int], None] = stop_group  # called with the recorded PID
    start_timeout: float = 90.0
    folders: tuple[Path, ...] = ()  # created before it starts (e.g. where a database file goes)
    about: str = ""  # for the start message, e.g. "on :5000"


def start_order(services: Sequence[Service]) -> list[Service]:
    """Each service after everything it depends on; otherwise in table order."""
    by_name = {s.name: s for s in services}
    if len(by_name) != len(services):
        raise ValueError(f"duplicate service names in {[s.name for s in services]}")
    for s in services:
        if unknown := [d for d in s.depends_on if d not in by_name]:
            raise ValueError(f"service {s.name} depends on unknown {unknown}")
        if unchecked := [d for d in s.depends_on if by_name[d].health is None]:
            # Its dependants would start as soon as it runs, before it is ready.
            raise ValueError(f"service {s.name} depends on {unchecked}, which have no health check")
    ordered: list[Service] = []
    while len(ordered) < len(services):
        done = {s.name for s in ordered}
        ready = [s for s in services if s.name not in done and set(s.depends_on) <= done]
        if not ready:
            raise ValueError(f"dependency cycle among {sorted(set(by_name) - done)}")
        ordered.append(ready[0])
    return ordered


class Supervisor:
    def __init__(self, services: Sequence[Service], pids: Path, logs: Path) -> None:
        self.services = start_order(services)
        self.pids = pids
        self.logs = logs
        self.started: list[str] = []  # by this process: a failed start stops these, never an earlier run's

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def _pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def start_all(
        self, base_env: Mapping[str, str], say: Callable[[str], None]
    ) -> dict[str, subprocess.Popen[bytes]]:
        """Start every service in order, each healthy before the next starts."""
        procs = {}
        for service in self.services:
            about = f" {service.about}" if service.about else ""
            say(f"starting {service.name}{about} (log: {self.log_file(service.name)})")
            procs[service.name] = self.start(service, base_env)
        return procs

    def start(self, service: Service, base_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        for folder in service.folders:
            folder.mkdir(parents=True, exist_ok=True)
        log = self.log_file(service.name)
        proc = start_background(list(service.command), log, {**base_env, **service.env})
        self.record(service.name, proc.pid)  # before the health wait: one never healthy is stopped too
        if service.health is not None:
            wait_healthy(
                service.name, service.health, service.start_timeout, log, alive=lambda: proc.poll() is None
            )
        return proc

    def record(self, name: str, pid: int) -> None:
        self.pids.mkdir(parents=True, exist_ok=True)
        self._pid_file(name).write_text(str(pid))
        self.started.append(name)

    def recorded(self) -> dict[str, int]:
        """The PIDs recorded for these services, in start order."""
        files = ((s.name, self._pid_file(s.name)) for s in self.services)
        return {name: int(f.read_text()) for name, f in files if f.exists()}

    def running(self) -> dict[str, int]:
        """Recorded services whose process is still alive."""
        return {name: pid for name, pid in self.recorded().items() if Path(f"/proc/{pid}").exists()}

    def stop(self, say: Callable[[str], None], only: Sequence[str] | None = None) -> None:
        """Stop the recorded services (or `only` these) in reverse start order."""
        hooks = {s.name: s.stop for s in self.services}
        for name, pid in reversed(self.recorded().items()):
            if only is not None and name not in only:
                continue
            say(f"stopping {name} (pid {pid})")
            # Forget the PID first: a foreground `make up` watching it then knows the stop is wanted.
            self._pid_file(name).unlink()
            hooks[name](pid)

    def watch(self, procs: Mapping[str, subprocess.Popen[bytes]], poll_s: float = 1.0) -> None:
        """Block while the services run. Returns once they were stopped on purpose (their PID file is
        gone: `make down` from another terminal); raises ServiceError when one exits on its own, so
        the caller stops the rest. Polling our own children also reaps them."""
        while True:
            for name, proc in procs.items():
                if proc.poll() is None:
                    continue
                if not self._pid_file(name).exists():
                    return
                raise ServiceError(
                    f"{name} exited on its own (code {proc.returncode}); see {self.log_file(name)}"
                )
            time.sleep(poll_s)
