"""The supervisor behind `make up` / `make down`: dependency order, health waits, recorded PIDs, stops in
reverse, and a foreground `make up` that follows its services. Real (tiny) processes, no platform."""

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from guessme_local.procs import HttpCheck, ServiceError, free_port, stop_group
from guessme_local.supervisor import Service, Supervisor, start_order

pytestmark = pytest.mark.unit

SLEEP = ["sleep", "120"]


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def supervisor(tmp_path: Path, services: list[Service]) -> Supervisor:
    return Supervisor(services, tmp_path / "run", tmp_path / "logs")


def test_dependencies_first_then_table_order() -> None:
    ok = lambda: True  # noqa: E731
    table = [
        Service("sync", SLEEP, depends_on=("ray",)),
        Service("airflow", SLEEP, depends_on=("mlflow", "ray"), health=ok),
        Service("ray", SLEEP, depends_on=("mlflow",), health=ok),
        Service("mlflow", SLEEP, health=ok),
    ]
    assert [s.name for s in start_order(table)] == ["mlflow", "ray", "sync", "airflow"]


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ([Service("a", SLEEP, depends_on=("b",))], r"a depends on unknown \['b'\]"),
        ([Service("a", SLEEP), Service("a", SLEEP)], "duplicate service names"),
        (
            [
                Service("a", SLEEP, depends_on=("b",), health=lambda: True),
                Service("b", SLEEP, depends_on=("a",), health=lambda: True),
            ],
            r"dependency cycle among \['a', 'b'\]",
        ),
        # A dependency must say when it is ready, or its dependants start too early.
        (
            [Service("a", SLEEP), Service("b", SLEEP, depends_on=("a",))],
            r"depends on \['a'\], which have no health",
        ),
    ],
)
def test_a_bad_table_is_refused_before_anything_starts(
    table: list[Service], error: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=error):
        supervisor(tmp_path, table)
    assert not (tmp_path / "run").exists()


def test_each_service_is_healthy_before_its_dependants_start(tmp_path: Path) -> None:
    port = free_port()
    ready = tmp_path / "client-reached-server"
    # The client exits at once (failing its start) if the server does not answer yet.
    client = (
        f"import pathlib, time, urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)"
    )
    client += f"; pathlib.Path({str(ready)!r}).touch(); time.sleep(120)"
    sup = supervisor(
        tmp_path,
        [
            Service("client", [sys.executable, "-c", client], health=ready.exists, depends_on=("server",)),
            Service(
                "server",
                [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                env={"PYTHONDONTWRITEBYTECODE": "1"},
                health=HttpCheck(f"http://127.0.0.1:{port}/"),
                folders=(tmp_path / "made-before-start",),
            ),
        ],
    )
    procs = sup.start_all({"PATH": "/usr/bin:/bin"}, say=lambda _: None)
    try:
        assert list(procs) == ["server", "client"]
        assert ready.exists()  # start_all returned once the client reached the server, not before
        assert all(proc.poll() is None for proc in procs.values())
        assert sup.running() == {name: proc.pid for name, proc in procs.items()}
        assert (tmp_path / "made-before-start").is_dir()
    finally:
        sup.stop(say=lambda _: None)
    assert sup.recorded() == {}
    assert all(proc.poll() is not None for proc in procs.values())


def test_a_service_that_dies_during_start_up_is_named_and_the_started_ones_stop(tmp_path: Path) -> None:
    sup = supervisor(
        tmp_path,
        [
            Service("first", SLEEP, health=lambda: True),
            Service(
                "broken",
                ["sh", "-c", "echo cannot bind >&2; exit 3"],
                health=lambda: False,
                depends_on=("first",),
            ),
        ],
    )
    with pytest.raises(ServiceError, match=rf"broken exited during start-up; see {tmp_path}/logs/broken.log"):
        sup.start_all({"PATH": "/usr/bin:/bin"}, say=lambda _: None)
    assert "cannot bind" in (tmp_path / "logs" / "broken.log").read_text()
    first = sup.recorded()["first"]
    assert sup.started == ["first", "broken"]
    sup.stop(say=lambda _: None, only=sup.started)  # what main() does on a failed start
    assert not alive(first)


def test_a_service_never_healthy_times_out_and_is_still_stopped(tmp_path: Path) -> None:
    sup = supervisor(
        tmp_path,
        [Service("mute", SLEEP, health=HttpCheck(f"http://127.0.0.1:{free_port()}/h"), start_timeout=0.5)],
    )
    with pytest.raises(ServiceError, match=r"mute did not answer http://127.0.0.1:\d+/h within 0 s"):
        sup.start_all({"PATH": "/usr/bin:/bin"}, say=lambda _: None)
    pid = sup.recorded()["mute"]  # recorded before the wait, so it can be stopped
    sup.stop(say=lambda _: None, only=sup.started)
    assert not alive(pid)


def test_stop_is_reverse_start_order_with_each_services_own_hook(tmp_path: Path) -> None:
    stopped: list[str] = []

    def hook(name: str):  # type: ignore[no-untyped-def]
        def stop(pid: int) -> None:
            stopped.append(name)
            stop_group(pid)

        return stop

    table = [
        Service("c", SLEEP, depends_on=("b",), stop=hook("c")),
        Service("a", SLEEP, health=lambda: True, stop=hook("a")),
        Service("b", SLEEP, depends_on=("a",), health=lambda: True, stop=hook("b")),
    ]
    sup = supervisor(tmp_path, table)
    sup.start_all({"PATH": "/usr/bin:/bin"}, say=lambda _: None)
    # `make down` is another process: a new supervisor over the same table finds the PIDs.
    supervisor(tmp_path, table).stop(say=lambda _: None)
    assert stopped == ["c", "b", "a"]


def start(sup: Supervisor, name: str) -> subprocess.Popen[bytes]:
    return sup.start(Service(name, SLEEP, health=lambda: True), {"PATH": "/usr/bin:/bin"})


def three(tmp_path: Path) -> Supervisor:
    return supervisor(tmp_path, [Service(n, SLEEP, health=lambda: True) for n in ("mlflow", "ray", "sync")])


def test_a_service_that_dies_is_named_and_ends_the_watch(tmp_path: Path) -> None:
    sup = three(tmp_path)
    procs = {name: start(sup, name) for name in ("mlflow", "ray", "sync")}
    try:
        procs["ray"].kill()
        with pytest.raises(ServiceError, match=r"ray exited on its own \(code -9\)"):
            sup.watch(procs, poll_s=0.05)
        assert procs["mlflow"].poll() is None  # the caller (main) stops the rest, not the watch
    finally:
        sup.stop(say=lambda _: None)
    assert all(proc.poll() is not None for proc in procs.values())


def test_make_down_from_another_terminal_ends_the_watch_quietly(tmp_path: Path) -> None:
    sup = three(tmp_path)
    procs = {name: start(sup, name) for name in ("mlflow", "ray")}
    elsewhere = threading.Timer(0.3, three(tmp_path).stop, kwargs={"say": lambda _: None})
    elsewhere.start()
    sup.watch(procs, poll_s=0.05)  # returns: no error for a stop that was asked for
    elsewhere.join()
    assert sup.recorded() == {}
    assert all(proc.poll() is not None for proc in procs.values())
