"""`make up` in the foreground: it follows its services, and ends with them."""

import subprocess
import threading
from pathlib import Path

import pytest

from guessme_local.procs import ServiceError, start_background
from guessme_local.stack import Settings, down, record, recorded, watch

pytestmark = pytest.mark.unit


def settings(tmp_path: Path) -> Settings:
    return Settings(tmp_path, tmp_path / "state", 0, 0, 0, 0, 0)  # no ports: nothing listens here


def start(s: Settings, service: str) -> subprocess.Popen:
    proc = start_background(["sleep", "120"], s.logs / f"{service}.log")
    record(s, service, proc.pid)
    return proc


def test_a_service_that_dies_is_named_and_ends_the_watch(tmp_path: Path) -> None:
    s = settings(tmp_path)
    procs = {service: start(s, service) for service in ("mlflow", "ray", "sync")}
    try:
        procs["ray"].kill()
        with pytest.raises(ServiceError, match=r"ray exited on its own \(code -9\)"):
            watch(s, procs, poll_s=0.05)
        assert procs["mlflow"].poll() is None  # the caller (main) stops the rest, not the watch
    finally:
        down(s)
    assert all(proc.poll() is not None for proc in procs.values())


def test_make_down_from_another_terminal_ends_the_watch_quietly(tmp_path: Path) -> None:
    s = settings(tmp_path)
    procs = {service: start(s, service) for service in ("mlflow", "airflow")}
    elsewhere = threading.Timer(0.3, down, args=(s,))
    elsewhere.start()
    watch(s, procs, poll_s=0.05)  # returns: no error for a stop that was asked for
    elsewhere.join()
    assert recorded(s) == {}
    assert all(proc.poll() is not None for proc in procs.values())
