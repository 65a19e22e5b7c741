"""The main job as a newcomer runs it: `make up` on a fresh clone, then play, then `make down`.

A snapshot of the project (what a clone holds) gets free ports and a one-epoch training budget, so the
real path runs in a few minutes: MLflow, Ray + Serve, the local sync, Airflow, the DAG's first
promotion commit, the game in a browser. Afterwards nothing of it may be left running or listening.
"""

import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect
from support.repo_snapshot import committed_uri, git, snapshot_repo

from guessme_local.procs import free_port, port_in_use

from .conftest import draw_digit

pytestmark = pytest.mark.stack

PORT_VARS = (
    "GUESSME_SERVE_PORT",
    "GUESSME_MLFLOW_PORT",
    "GUESSME_RAY_PORT",
    "GUESSME_RAY_DASHBOARD_PORT",
    "GUESSME_AIRFLOW_PORT",
)


@dataclass
class Stack:
    clone: Path
    ports: dict[str, int]
    env: dict[str, str]
    up_output: str = ""
    up_seconds: float = 0.0

    @property
    def game(self) -> str:
        return f"http://127.0.0.1:{self.ports['GUESSME_SERVE_PORT']}"


def clone_env(ports: dict[str, int]) -> dict[str, str]:
    """The environment of a new shell: nothing of this session's state or ports leaks in (the shared
    environment cache and the browser's location excepted)."""
    leaks = ("GUESSME_", "RAY_", "AIRFLOW", "MLFLOW_", "DVC_", "PYTHONPATH", "ML_", "TOOLS_VENV")
    shared = ("GUESSME_CACHE", "GUESSME_CHROMIUM")
    env = {k: v for k, v in os.environ.items() if k in shared or not k.startswith(leaks)}
    return {**env, **{k: str(v) for k, v in ports.items()}}


def processes_under(path: Path) -> list[str]:
    """Command lines of live processes that mention `path` (the clone's own state and venv links)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline and "pytest" not in cmdline:
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


@pytest.fixture(scope="module")
def stack(run_dir: Path) -> Iterator[Stack]:
    clone = snapshot_repo(run_dir / "make-up" / "guessme", model_uri=None)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["train"]["epochs"] = 1  # the path is under test here, not the accuracy
    params["prepare"]["limit"] = 3000
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(clone, "commit", "--quiet", "-am", "test: one-epoch training")
    ports = {name: free_port() for name in PORT_VARS}
    env = clone_env(ports)
    stack = Stack(clone, ports, env)
    t0 = time.monotonic()
    up = run_make(stack, "up", "DETACH=1", timeout=1500)
    stack.up_output, stack.up_seconds = up.stdout + up.stderr, time.monotonic() - t0
    try:
        assert up.returncode == 0, f"make up failed:\n{stack.up_output[-4000:]}"
        print(f"\nmake up on a fresh clone: playable after {stack.up_seconds:.0f} s")
        yield stack
    finally:
        make_down_leaves_nothing(stack)
        # `make clean` also removes Ray's short temp folder that a deep clone like this one gets.
        ray_dir = (clone / ".guessme" / "ray").resolve()
        clean = run_make(stack, "clean", timeout=120)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert not (clone / ".guessme").exists()
        assert not ray_dir.exists()


def run_make(stack: Stack, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", *args], cwd=stack.clone, env=stack.env, capture_output=True, text=True, timeout=timeout
    )


def make_down_leaves_nothing(stack: Stack) -> None:
    down = run_make(stack, "down", timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    # No open port, no process of this clone (processes may need a moment to exit).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        any(port_in_use(p) for p in stack.ports.values()) or processes_under(stack.clone)
    ):
        time.sleep(0.5)
    assert [n for n, p in stack.ports.items() if port_in_use(p)] == [], "ports still open after make down"
    assert processes_under(stack.clone) == [], "processes left after make down"


def test_make_up_trains_promotes_and_serves_the_game(stack: Stack, page: Page, screenshots: Path) -> None:
    # The first promotion is a Git commit in the clone, and it is what is served.
    uri = committed_uri(stack.clone)
    assert uri == "models:/guessme-cnn/1", stack.up_output[-3000:]
    assert git(stack.clone, "log", "-1", "--format=%s") == f"deploy(local): {uri}"
    for name in ("the game", "MLflow", "Ray dashboard", "Airflow"):
        assert name in stack.up_output

    page.goto(f"{stack.game}/?mode=free")
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "connected", timeout=20_000)
    draw_digit(page, 1)
    expect(page.get_by_test_id("guess")).not_to_have_text("?", timeout=10_000)
    assert page.get_by_test_id("guess").inner_text().strip().isdigit()

    page.goto(f"{stack.game}/?mode=about")
    expect(page.get_by_test_id("model-version")).to_have_text("1", timeout=10_000)
    page.screenshot(path=str(screenshots / "make-up-about-model.png"))


def test_a_second_start_reuses_the_deployed_model(stack: Stack) -> None:
    head = git(stack.clone, "rev-parse", "HEAD")
    make_down_leaves_nothing(stack)
    t0 = time.monotonic()
    up = run_make(stack, "up", "DETACH=1", timeout=600)
    seconds = time.monotonic() - t0
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    print(f"\nmake up, second start: playable after {seconds:.0f} s")
    assert "running the Airflow DAG" not in up.stdout  # nothing retrained
    assert git(stack.clone, "rev-parse", "HEAD") == head  # and nothing promoted
    with urllib.request.urlopen(f"{stack.game}/model", timeout=10) as res:
        assert json.load(res)["model_uri"] == committed_uri(stack.clone)


def test_a_start_over_a_running_stack_fails_clearly_and_harms_nothing(stack: Stack) -> None:
    again = run_make(stack, "up", "DETACH=1", timeout=300)
    assert again.returncode != 0
    assert "already running" in again.stderr, again.stdout[-2000:] + again.stderr[-2000:]
    with urllib.request.urlopen(f"{stack.game}/healthz", timeout=10) as res:  # the first stack still serves
        assert json.load(res)["status"] == "ok"


def test_make_status_reports_the_running_stack_in_step(stack: Stack) -> None:
    # `make up` returns once the game answers; Healthy also needs Serve's rollout to every replica to be
    # over (the sync's serve_observer), which on 2 busy cores can take a replica start longer.
    t0 = time.monotonic()
    while True:
        status = run_make(stack, "-s", "status", timeout=60)
        if re.search(r"(?m)^Health: +Healthy", status.stdout) or time.monotonic() - t0 > 180:
            break
        time.sleep(2)
    print(f"\nmake status: Healthy {time.monotonic() - t0:.0f} s after make up returned")
    assert status.returncode == 0, status.stdout[-3000:] + status.stderr[-3000:]
    uri = committed_uri(stack.clone)
    assert re.search(rf"(?m)^Committed URI: +{uri}$", status.stdout), status.stdout
    assert re.search(rf"(?m)^Served URI: +{uri} \(version", status.stdout), status.stdout
    assert re.search(r"(?m)^Health: +Healthy", status.stdout), status.stdout
    assert re.search(r"(?m)^game +Running ", status.stdout), status.stdout
