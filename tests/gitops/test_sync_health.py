"""The local sync's health: Healthy only when the committed URI answers, Degraded with a one-line reason
for each kind of bad commit, Progressing (with the elapsed time) in between; all in the status file."""

from pathlib import Path
from typing import Any

import pytest
from support.repo_snapshot import OVERLAY, TEMPLATE_URI, commit_model_uri, git

from guessme_contracts.deploy_status import (
    DEGRADED,
    HEALTHY,
    PROGRESSING,
    Observation,
    Served,
    assess,
    read_status,
)
from guessme_local.sync import Reconciler, model_uri_of

pytestmark = pytest.mark.unit

V1, V2 = TEMPLATE_URI, "models:/guessme-cnn/2"


class FakeApp:
    """A serving app as /model shows it: applying a config 'loads' its URI unless told to fail."""

    def __init__(self) -> None:
        self.served = ""
        self.configured = ""
        self.last_error: str | None = None
        self.broken: set[str] = set()
        self.slow = False  # the load has not finished yet
        self.answers = True

    def apply(self, config: dict[str, Any]) -> None:
        self.configured = model_uri_of(config) or ""

    def load(self) -> None:
        uri = self.configured
        if uri in self.broken:
            self.last_error = (
                f"2026-11-30T12:00:00+00:00 loading {uri}: RestException: RESOURCE_DOES_NOT_EXIST\nmore"
            )
        elif not self.slow:
            self.served, self.last_error = uri, None

    def observe(self) -> Observation:
        if not self.answers:
            return Observation(None, "/model does not answer (ConnectError)")
        self.load()
        return Observation(
            Served(self.served, self.served.rsplit("/", 1)[-1] if self.served else None, self.last_error)
        )


@pytest.fixture
def app() -> FakeApp:
    return FakeApp()


@pytest.fixture
def sync(repo: Path, app: FakeApp, tmp_path: Path) -> Reconciler:
    return Reconciler(
        repo, "local", "main", app.apply, retry_s=3600, observe=app.observe, status_file=tmp_path / "s.json"
    )


def test_healthy_only_when_the_committed_uri_answers(sync: Reconciler, app: FakeApp, repo: Path) -> None:
    assert sync.step() == "applied"
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert (status.health, status.model_uri, status.served_uri) == (HEALTHY, V1, V1)
    assert status.commit == git(repo, "rev-parse", "HEAD") == status.applied_commit
    assert status.healthy_after_s is not None
    assert status.apply_s is not None

    app.slow = True  # the next version takes a while: the old one answers meanwhile
    commit = commit_model_uri(repo, V2)
    assert sync.step() == "applied"
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert (status.commit, status.health, status.served_uri) == (commit, PROGRESSING, V1)
    assert V1 in status.reason
    assert "s)" in status.reason
    assert status.healthy_after_s is None

    app.slow = False
    assert sync.step() is None
    assert read_status(sync.status_file).health == HEALTHY  # type: ignore[arg-type, union-attr]


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("models:/guessme-cnn@champion", "refused URI: "),  # an alias
        ("models:/guessme-cnn/latest", "refused URI: "),
        (
            "models:/guessme-cnn/99",
            "load error: models:/guessme-cnn/99: RestException: RESOURCE_DOES_NOT_EXIST",
        ),
    ],
)
def test_bad_commits_are_degraded_with_one_line_while_the_old_model_serves(
    sync: Reconciler, app: FakeApp, repo: Path, uri: str, reason: str
) -> None:
    sync.step()
    app.broken.add("models:/guessme-cnn/99")
    commit_model_uri(repo, uri)
    sync.step()
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert status.health == DEGRADED
    assert status.reason.startswith(reason)
    assert "\n" not in status.reason
    assert status.model_uri == uri
    assert app.served == V1  # the previous model keeps answering


def test_a_malformed_model_env_is_a_render_error(sync: Reconciler, app: FakeApp, repo: Path) -> None:
    sync.step()
    (repo / OVERLAY).write_text("MODEL_URI models:/guessme-cnn/2\n")  # no "="
    git(repo, "commit", "--quiet", "-am", "typo")
    assert sync.step() == "failed"
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert status.health == DEGRADED
    assert status.reason.startswith("render error: ")
    assert "\n" not in status.reason
    assert app.configured == V1  # Serve was not touched


def test_never_healthy_while_a_different_model_answers(sync: Reconciler, app: FakeApp, repo: Path) -> None:
    sync.step()
    app.slow = True
    commit_model_uri(repo, V2)
    sync.grace_s = 0.0  # past the grace period, a commit that is still not served is Degraded
    sync.step()
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert status.health == DEGRADED
    assert status.reason.startswith("not served within 0 s")
    assert status.served_uri == V1


def test_an_app_that_does_not_answer_is_progressing(sync: Reconciler, app: FakeApp) -> None:
    app.answers = False
    sync.step()
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert status.health == PROGRESSING
    assert "does not answer" in status.reason
    assert status.served_uri is None


def test_assess_rules() -> None:
    old = Served(V1, "1", None)
    assert assess(V1, Observation(old)).status == HEALTHY
    assert assess(V2, Observation(old)).status == PROGRESSING
    # A failed load of another URI (an earlier commit) says nothing about this one.
    stale = Served(V1, "1", f"t loading {V2}: boom")
    assert assess("models:/guessme-cnn/3", Observation(stale)).status == PROGRESSING
    assert assess(V2, Observation(stale)).status == DEGRADED
    # The configured URI with no loaded version (the app's first load failed) is not Healthy.
    assert assess(V2, Observation(Served(V2, None, f"t loading {V2}: boom"))).status == DEGRADED
    assert assess(V2, Observation(Served(V2, None, None))).status == PROGRESSING
    assert assess("", Observation(Served("", None, None))).status == HEALTHY
    # The committed URI answering while the app has not settled (Serve rolling out): not yet Healthy.
    rolling = assess(V1, Observation(old, unsettled="Serve application guessme is DEPLOYING"))
    assert (rolling.status, rolling.reason) == (
        PROGRESSING,
        f"{V1} answers; Serve application guessme is DEPLOYING",
    )
    assert (
        assess(V1, Observation(None, "Serve application guessme DEPLOY_FAILED: x", failed=True)).status
        == DEGRADED
    )


def test_a_branch_reset_to_the_applied_commit_is_tracked_again(
    sync: Reconciler, app: FakeApp, repo: Path
) -> None:
    sync.step()
    good = git(repo, "rev-parse", "HEAD")
    commit_model_uri(repo, "models:/guessme-cnn@champion")
    sync.step()
    assert read_status(sync.status_file).health == DEGRADED  # type: ignore[arg-type, union-attr]
    git(repo, "reset", "--quiet", "--hard", good)
    sync.step()
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert (status.commit, status.model_uri, status.health) == (good, V1, HEALTHY)
