"""Which Ray cluster training joins (guessme_train.ray_cluster): RAY_ADDRESS, else this clone's running
`make up` head found from the state folder, else a private local Ray."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guessme_local import stack
from guessme_local.settings import LocalSettings
from guessme_train import ray_cluster

pytestmark = pytest.mark.unit


def settings(state: Path) -> LocalSettings:
    return LocalSettings(root=state.parent, state=state)


@pytest.fixture
def fake_head(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line and environment look like `make up`'s `ray start --head --block`."""
    argv = [sys.executable, "-c", "import time; time.sleep(120)", "start", "--head", "--block"]
    argv += ["--node-ip-address", "127.0.0.1", "--port", "6399"]
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "head-token")}
    proc = subprocess.Popen(argv, env=env)
    # Popen may return before the exec (vfork): wait until the process shows its command line.
    deadline = time.monotonic() + 30
    while b"--head" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield proc
    proc.kill()
    proc.wait()


def test_finds_the_head_make_up_recorded(tmp_path: Path, fake_head: subprocess.Popen[bytes]) -> None:
    state = tmp_path / ".guessme"
    stack.supervisor(settings(state)).record("ray", fake_head.pid)  # what `make up` writes

    head = ray_cluster.running_local_head(state)

    assert head is not None
    assert head.pid == fake_head.pid
    assert head.address == "127.0.0.1:6399"
    assert head.env == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "head-token")}


def test_a_stopped_head_or_a_reused_pid_is_no_cluster(tmp_path: Path) -> None:
    state = tmp_path / ".guessme"
    assert ray_cluster.running_local_head(state) is None  # never started

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        stack.supervisor(settings(state)).record("ray", other.pid)
        assert ray_cluster.running_local_head(state) is None  # the PID is not a Ray head
    finally:
        other.kill()
        other.wait()
    assert ray_cluster.running_local_head(state) is None  # the process is gone


def test_ray_address_wins_then_the_running_head_then_a_private_ray(
    tmp_path: Path, fake_head: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / ".guessme"
    monkeypatch.setenv("GUESSME_STATE", str(state))
    monkeypatch.setenv("RAY_ADDRESS", "")  # recorded by monkeypatch, so choose_address's setting is undone
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", "/elsewhere/token")
    assert ray_cluster.choose_address()[0] == "local"

    stack.supervisor(settings(state)).record("ray", fake_head.pid)
    address, why = ray_cluster.choose_address()
    assert address == "127.0.0.1:6399"
    assert f"pid {fake_head.pid}" in why
    assert os.environ["RAY_AUTH_TOKEN_PATH"] == str(tmp_path / "head-token")  # the head's token
    assert os.environ["RAY_ADDRESS"] == "127.0.0.1:6399"  # for Ray's own helper processes

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6379")
    assert ray_cluster.choose_address() == ("10.0.0.7:6379", "RAY_ADDRESS")


def test_workers_get_the_drivers_code_path_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", "libs/guessme-core/src:apps/guessme-train/src")  # dvc.yaml's
    env = ray_cluster.worker_runtime_env()["env_vars"]["PYTHONPATH"].split(os.pathsep)
    assert env == [str(tmp_path / "libs/guessme-core/src"), str(tmp_path / "apps/guessme-train/src")]
