"""GitOps end to end: a promotion commit goes live through the local sync with zero failed requests, and
`git revert` of it brings the previous version back. Prints the seconds from commit to new version."""

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.repo_snapshot import git, snapshot_repo

from guessme_contracts.model_uri import ModelRef
from guessme_pipeline.promote import Candidate, promote

# A "1": one vertical stroke of ink in the middle of the 28x28 canvas.
ONE = [[1.0 if 6 <= r <= 21 and 13 <= c <= 14 else 0.0 for c in range(28)] for r in range(28)]


@dataclass
class Traffic:
    """Sequential /predict requests in a thread: every answer's model version, and every failure."""

    url: str
    answers: list[tuple[float, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    r = client.post(f"{self.url}/predict", json={"pixels": ONE})
                    if r.status_code == 200:
                        self.answers.append((time.monotonic(), str(r.json()["model_version"])))
                    else:
                        self.failures.append(f"HTTP {r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))

    def first_answer_from(self, version: int, after: float, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, v in list(self.answers):
                if t >= after and v == str(version):
                    return t
            time.sleep(0.05)
        raise AssertionError(f"version {version} never answered; last answers {self.answers[-3:]}")


def wait_for_log(log: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the sync log within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.mark.integration
@pytest.mark.usefixtures("restore_serve_app")
def test_promotion_commit_goes_live_and_revert_rolls_back(
    serve_app: Any, trained_model: Any, second_model_version: Any, tmp_path: Path
) -> None:
    first, second = trained_model, second_model_version
    serve_app.deploy(first.uri)  # the shared app may have been left on another version by other tests
    repo = snapshot_repo(tmp_path / "repo", first.uri)
    log = tmp_path / "sync.log"
    cmd = [
        sys.executable, "-m", "guessme_local.sync", "--repo", str(repo), "--env", "local",
        "--interval", "0.5",
        "--dashboard-url", serve_app.dashboard_url, "--serve-port", str(serve_app.http_port),
    ]  # fmt: skip
    traffic = Traffic(serve_app.url)
    with open(log, "wb") as out:
        sync = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    load = threading.Thread(target=traffic.run, daemon=True)
    try:
        # The sync's first pass applies the committed config: the version already served, so no swap.
        wait_for_log(log, f"model_uri={first.uri} result=")
        load.start()
        time.sleep(1.0)

        started = time.monotonic()
        promoted = promote(
            repo, "local", Candidate(ModelRef.parse(second.uri), second.run_id, {"test_accuracy": 0.9})
        )
        assert promoted.committed
        live = traffic.first_answer_from(second.version, started)
        print(f"\npromotion commit -> {second.uri} answering: {live - started:.2f} s (goal < 10 s)")
        wait_for_log(log, f"commit={promoted.commit[:12]} env=local model_uri={second.uri} health=Healthy")
        promoted_healthy = time.monotonic()  # seen after the sync said so: later than the fact

        time.sleep(1.0)
        reverted_at = time.monotonic()
        git(repo, "revert", "--no-edit", "HEAD")
        revert = git(repo, "rev-parse", "HEAD")
        back = traffic.first_answer_from(first.version, reverted_at)
        print(f"git revert -> {first.uri} answering again: {back - reverted_at:.2f} s")
        wait_for_log(log, f"commit={revert[:12]} env=local model_uri={first.uri} health=Healthy")
        reverted_healthy = time.monotonic()
        time.sleep(1.0)
    finally:
        traffic.stop.set()
        if load.is_alive():
            load.join(timeout=15)
        sync.terminate()
        sync.wait(timeout=15)

    print(f"requests during the swaps: {len(traffic.answers)} answered, {len(traffic.failures)} failed")
    assert traffic.failures == []
    old, new = str(first.version), str(second.version)

    def versions(start: float, end: float = float("inf")) -> set[str]:
        return {v for t, v in traffic.answers if start <= t < end}

    # Serve rolls a config out a share of the replicas at a time, so while a swap is under way some
    # replicas answer with the old version and some with the new. Once the sync says Healthy, the
    # rollout is over (serve_observer): from then on, every answer comes from the committed version.
    assert versions(0, started) == {old}
    assert versions(started, promoted_healthy) <= {old, new}
    assert versions(promoted_healthy, reverted_at) == {new}
    assert versions(reverted_at, reverted_healthy) <= {old, new}
    assert versions(reverted_healthy) == {old}
