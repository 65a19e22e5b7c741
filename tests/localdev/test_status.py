"""`make status`: what it prints and its exit status, against a fake running stack (PID files naming a
live process, a sync status file, and a stub /model), and on a stopped stack (fast, no hang)."""

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.http_stub import StubHandler, serving
from support.repo_snapshot import OVERLAY, git, init_repo

from guessme_contracts.deploy_status import DeployStatus, status_path, write_status
from guessme_contracts.layout import Layout
from guessme_local.procs import free_port
from guessme_local.settings import LocalSettings
from guessme_local.status import IN_STEP, OUT_OF_STEP, STOPPED, report

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
V1, V2 = "models:/guessme-cnn/1", "models:/guessme-cnn/2"


class ModelStub(StubHandler):
    served = V1

    def do_GET(self) -> None:  # http.server's name for the handler
        if self.path != "/model":
            self.send_error(404)
            return
        self.send_json(200, {"model_uri": self.served, "model_version": self.served.rsplit("/", 1)[1]})


@pytest.fixture
def game() -> Iterator[int]:
    with serving(ModelStub) as url:
        yield int(url.rsplit(":", 1)[1])


@pytest.fixture
def settings(tmp_path: Path, game: int) -> LocalSettings:
    root = tmp_path / "clone"
    (root / "environments" / "local").mkdir(parents=True)
    (root / OVERLAY).write_text(f"MODEL_URI={V1}\n")
    init_repo(root)
    mlflow, ray, dashboard, airflow = (free_port() for _ in range(4))
    return LocalSettings(
        root=root,
        state=tmp_path / "state",
        serve_port=game,
        mlflow_port=mlflow,
        ray_port=ray,
        dashboard_port=dashboard,
        airflow_port=airflow,
    )


def start(
    s: LocalSettings, commit: str, uri: str, synced_ago: float, health: str = "Healthy", reason: str = ""
) -> None:
    """Record this test process as every service (alive), and a sync status for `commit`."""
    s.pids.mkdir(parents=True, exist_ok=True)
    for service in ("mlflow", "ray", "airflow", "sync"):
        (s.pids / f"{service}.pid").write_text(str(os.getpid()))
    now = time.time()
    status = DeployStatus(
        "local", "main", commit, uri, health, reason or f"serving {uri}", 30.0, now - synced_ago, now
    )
    status.applied_commit = commit
    write_status(status_path(Layout.at(s.root, s.state), "local"), status)


def test_in_step(settings: LocalSettings, capsys: pytest.CaptureFixture[str]) -> None:
    head = git(settings.root, "rev-parse", "HEAD")
    start(settings, head, V1, synced_ago=300)
    assert report(settings) == IN_STEP
    out = capsys.readouterr().out
    assert re.search(rf"(?m)^Committed URI: +{V1}$", out)
    assert re.search(rf"(?m)^Served URI: +{V1} \(version 1\)$", out)
    assert "Synced, last sync 5 min ago" in out
    assert "Healthy - serving" in out
    assert re.search(rf"(?m)^game +Running .* http://127.0.0.1:{settings.serve_port}$", out)
    # Every declared service of `make up`, at the address its own health check asks (nothing listens
    # there in this test), and the sync, which has no check, by its log.
    for name, port in (
        ("mlflow", settings.mlflow_port),
        ("ray", settings.dashboard_port),
        ("airflow", settings.airflow_port),
    ):
        assert re.search(rf"(?m)^{name} +Not answering +\d+ +http://127.0.0.1:{port}$", out), name
    assert re.search(rf"(?m)^sync +Running +\d+ +{re.escape(str(settings.logs / 'sync.log'))}$", out)


def test_out_of_step_only_after_the_grace_period(
    settings: LocalSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    (settings.root / OVERLAY).write_text(f"MODEL_URI={V2}\n")
    git(settings.root, "commit", "--quiet", "-am", "deploy 2")
    head = git(settings.root, "rev-parse", "HEAD")
    start(settings, head, V2, synced_ago=5)  # 5 s of the 30 s grace period: still in step
    assert report(settings) == IN_STEP
    assert "of the 30 s grace period" in capsys.readouterr().out
    start(settings, head, V2, synced_ago=31)
    assert report(settings) == OUT_OF_STEP
    assert f"OUT OF STEP: {V2} is committed but {V1} answers" in capsys.readouterr().out


def test_a_served_model_that_fails_the_probe_set_is_out_of_step_at_once(
    settings: LocalSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The committed URI answers, but the sync found it fails the probe set: Degraded, exit 1, within
    the grace period too (the verdict is final; waiting cannot change it)."""
    head = git(settings.root, "rev-parse", "HEAD")
    reason = "probe set: it recognises 10% of 20 drawings (2 right), below promote.verify_min_accuracy 80%"
    start(settings, head, V1, synced_ago=2, health="Degraded", reason=reason)
    assert report(settings) == OUT_OF_STEP
    out = capsys.readouterr().out
    assert re.search(rf"(?m)^Served URI: +{V1} \(version 1\)$", out)
    assert f"Degraded - {reason}" in out
    assert f"DEGRADED: {V1} at {head[:12]}: {reason}" in out


def test_a_malformed_committed_overlay_is_shown_not_a_crash(
    settings: LocalSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    (settings.root / OVERLAY).write_text(f"MODEL_URI {V2}\n")  # no "="
    git(settings.root, "commit", "--quiet", "-am", "typo")
    head = git(settings.root, "rev-parse", "HEAD")
    start(settings, head, "", synced_ago=2, health="Degraded", reason="render error: kustomize failed")
    assert report(settings) == OUT_OF_STEP
    out = capsys.readouterr().out
    assert re.search(
        r"(?m)^Committed URI: +\(unreadable: model.env must hold exactly one MODEL_URI= line", out
    )
    assert "DEGRADED: no model at" in out


def test_a_stopped_stack_says_so_at_once(settings: LocalSettings, tmp_path: Path) -> None:
    assert report(settings) == STOPPED
    # The real command, as `make status` runs it, with nothing started in this state folder.
    env = {**os.environ, "GUESSME_STATE": str(tmp_path / "empty-state"), "RAY_TMPDIR": str(tmp_path / "ray")}
    (tmp_path / "empty-state" / "venvs").mkdir(parents=True)
    (tmp_path / "empty-state" / "venvs" / "ml").symlink_to(REPO / ".guessme" / "venvs" / "ml")
    started = time.monotonic()
    done = subprocess.run(
        ["make", "-s", "status"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "Guessme is not running" in done.stdout
    print(f"make status on a stopped stack: {time.monotonic() - started:.2f} s")
