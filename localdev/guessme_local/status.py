"""`make status`: the running local stack at a glance, in the spirit of `argocd app get`.

Prints the branch head and the commit the sync last applied, the committed and the served model URI,
the health (the sync's verdict, probe set included) and the time since the last sync, and each
service's state and URL. Exit status: 0 in step (or still within the sync's grace period); 1 when the
committed and the served model have differed for longer than the grace period, or when the sync reports
the head commit Degraded (for instance, its model serves but fails the probe set); 2 when the stack is
not running. Every network call has a short timeout, and a stopped stack is recognised from its PID
files before any is made.
"""

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from guessme_contracts.deploy_status import DEGRADED, DeployStatus, read_status, status_path
from guessme_contracts.git import Git, GitError
from guessme_contracts.layout import Layout
from guessme_contracts.overlay import OverlayError, committed_model_uri
from guessme_local import stack
from guessme_local.procs import HttpCheck
from guessme_local.settings import LocalSettings

ENV = "local"
DEFAULT_GRACE_S = 60.0  # when the sync has written no status yet (its own default, --grace)
IN_STEP, OUT_OF_STEP, STOPPED = 0, 1, 2


@dataclass(frozen=True)
class Service:
    name: str
    pid: int | None
    url: str
    state: str


def ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def served_model(serve_port: int) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{serve_port}/model", timeout=2)
        return dict(response.json()) if response.is_success else None
    except (httpx.HTTPError, ValueError):
        return None


def services(s: LocalSettings, alive: dict[str, int], game_answers: bool) -> list[Service]:
    """`make up`'s declared services (guessme_local.stack), each looked at with its own health check,
    and the game, which runs inside the Ray head."""

    def state(name: str, ok: bool) -> str:
        if name not in alive:
            return "Stopped"
        return "Running" if ok else "Not answering"

    def healthy(check: Callable[[], bool]) -> bool:
        try:
            return check()
        except OSError:  # e.g. the Ray head's token file is gone: it cannot be asked
            return False

    sup = stack.supervisor(s)
    table = []
    for row in sup.services:
        if isinstance(row.health, HttpCheck):
            url = urlsplit(row.health.url)
            where, ok = f"{url.scheme}://{url.netloc}", healthy(row.health)
        else:  # no health check (the sync): its log is where to look
            where, ok = str(sup.log_file(row.name)), True
        table.append(Service(row.name, alive.get(row.name), where, state(row.name, ok)))
    game = f"http://127.0.0.1:{s.serve_port}"
    return [*table, Service("game", alive.get("ray"), game, state("ray", game_answers))]


def report(s: LocalSettings, now: float | None = None) -> int:
    now = time.time() if now is None else now
    alive = stack.running(s)
    if not alive:
        print(f"Guessme is not running from {s.root} (no live service in {s.pids}); start it with `make up`.")
        return STOPPED
    repo = Git(s.root)
    try:
        branch = repo.current_branch() or "HEAD"
        head = repo.run("rev-parse", "--verify", "HEAD^{commit}")
        head_line = repo.run("log", "-1", "--format=%h %s", head)
        head_time = float(repo.run("log", "-1", "--format=%ct", head))
    except GitError as exc:
        print(f"cannot read {s.root}: {exc}")
        return OUT_OF_STEP
    try:
        committed = committed_model_uri(s.root, ENV) or ""
        committed_line = committed or "(none)"
    except OverlayError as exc:  # the sync reports such a commit Degraded (render error); say why here too
        committed, committed_line = "", f"(unreadable: {exc})"
    status = read_status(status_path(Layout.at(s.root, s.state), ENV))
    info = served_model(s.serve_port)
    served = None if info is None else str(info.get("model_uri") or "")
    grace = status.grace_s if status else DEFAULT_GRACE_S

    rows = [
        ("Name", f"guessme/{ENV} (environments/{ENV})"),
        ("Repo", f"{s.root} (branch {branch})"),
        ("Branch head", head_line),
        ("Last applied", applied_line(status, head, now)),
        ("Committed URI", committed_line),
        ("Served URI", served_line(info)),
        ("Health", health_line(status, head, now)),
    ]
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        print(f"{key + ':':<{width}}{value}")
    print()
    table = services(s, alive, info is not None)
    print(f"{'SERVICE':<9}{'STATE':<15}{'PID':<9}URL")
    for svc in table:
        print(f"{svc.name:<9}{svc.state:<15}{svc.pid or '-'!s:<9}{svc.url}")

    if status is not None and status.commit == head and status.health == DEGRADED:
        print(f"\nDEGRADED: {status.model_uri or 'no model'} at {head[:12]}: {status.reason}")
        return OUT_OF_STEP
    if served == committed:
        return IN_STEP
    # Out of step since the sync took up the head commit (or since the commit, if it has not yet).
    since = status.synced_at if status and status.commit == head else head_time
    if now - since > grace:
        print(
            f"\nOUT OF STEP: {committed or 'no model'} is committed but "
            f"{'nothing answers' if served is None else (served or 'no model') + ' answers'}, "
            f"for {now - since:.0f} s (the sync's grace period is {grace:.0f} s)"
        )
        return OUT_OF_STEP
    print(f"\n(not yet serving the committed model: {now - since:.0f} s of the {grace:.0f} s grace period)")
    return IN_STEP


def applied_line(status: DeployStatus | None, head: str, now: float) -> str:
    if status is None:
        return "(the sync has written no status yet)"
    applied = status.applied_commit[:12] if status.applied_commit else "nothing"
    state = "Synced" if status.applied_commit == head else f"OutOfSync (head {head[:12]} not applied)"
    return f"{applied}  {state}, last sync {ago(now - status.synced_at)}"


def served_line(info: dict[str, Any] | None) -> str:
    if info is None:
        return "(the game's /model does not answer)"
    uri = info.get("model_uri") or "(none)"
    version = info.get("model_version")
    loaded = f", loaded {info['loaded_at']}" if info.get("loaded_at") else ""
    error = f"; last load error: {info['last_error']}" if info.get("last_error") else ""
    return f"{uri}{f' (version {version}{loaded})' if version else ''}{error}"


def health_line(status: DeployStatus | None, head: str, now: float) -> str:
    if status is None:
        return "Unknown (no sync status yet)"
    about = "" if status.commit == head else f" (of {status.commit[:12]}, not the head)"
    took = (
        f", Healthy {status.healthy_after_s:.1f} s after sync" if status.healthy_after_s is not None else ""
    )
    return f"{status.health}{about} - {status.reason}{took} (checked {ago(now - status.checked_at)})"


def main() -> None:
    sys.exit(report(LocalSettings()))


if __name__ == "__main__":
    main()
