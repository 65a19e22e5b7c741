"""The local sync's health includes the probe set: a committed model that loads but does not recognise
the committed probe drawings is Degraded (status file and log line), never Healthy.

The serving app here is a small HTTP stand-in with the real app's `/model` and `/predict` shapes, so the
sync's real observer (`serve_observer`) and real probe check (`committed_prober`: the probe set and the
threshold read at the commit, scored with guessme_contracts.probes) run against it; the stand-in's models
answer every probe right, or every probe wrong. This is the sync's own check, behind the real app's probe
gate (guessme_serve.model_holder refuses such a model before the swap, so the real sync reports its load
error instead: tests/gitops/test_verified_deploy.py, with the real serve app and a really untrained model).
"""

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from support.http_stub import StubHandler, serving
from support.repo_snapshot import TEMPLATE_URI, commit_model_uri, git

from guessme_contracts.deploy_status import DEGRADED, HEALTHY, PROGRESSING, read_status
from guessme_contracts.probes import PROBE_SET, parse_probes
from guessme_local.sync import Reconciler, committed_prober, model_uri_of, serve_observer

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
GOOD, BAD, BROKEN = TEMPLATE_URI, "models:/guessme-cnn/2", "models:/guessme-cnn/3"
PROBES = parse_probes((REPO / PROBE_SET).read_text())
LABELS = {json.dumps(p.drawing, sort_keys=True): p.label for p in PROBES}


class App(StubHandler):
    """GET /model and POST /predict as guessme-serve answers them. GOOD recognises every probe, BAD
    loads fine but answers the next digit, BROKEN's /predict fails."""

    served: ClassVar[str] = ""
    predictions: ClassVar[int] = 0
    serve_status: ClassVar[str] = "RUNNING"  # the Serve application's status on Ray's dashboard

    def do_GET(self) -> None:  # http.server's name for the handler
        if self.path.startswith("/api/serve/applications"):  # Ray's dashboard, as ray_head reads it
            self.send_json(200, {"applications": {"guessme": {"status": App.serve_status}}})
            return
        version = App.served.rsplit("/", 1)[-1] if App.served else None
        self.send_json(200, {"model_uri": App.served, "model_version": version, "last_error": None})

    def do_POST(self) -> None:
        drawing = self.read_json()
        App.predictions += 1
        if App.served == BROKEN:
            self.send_json(500, {"detail": "boom"})
            return
        label = LABELS[json.dumps(drawing, sort_keys=True)]
        digit = label if App.served == GOOD else (label + 1) % 10
        self.send_json(200, {"digit": digit, "model_uri": App.served, "model_version": "x"})


@pytest.fixture
def app_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the stand-in dashboard asks for no Ray token
    App.served, App.predictions, App.serve_status = "", 0, "RUNNING"
    with serving(App) as url:
        yield url


@pytest.fixture
def sync(repo: Path, app_url: str, tmp_path: Path) -> Reconciler:
    def apply(config: dict[str, Any]) -> None:  # the stand-in loads at once
        App.served = model_uri_of(config) or ""

    return Reconciler(
        repo,
        "local",
        "main",
        apply,
        retry_s=3600,
        grace_s=3600,
        observe=serve_observer(app_url, app_url),
        status_file=tmp_path / "sync-local.json",
        probe=committed_prober(repo, app_url),
    )


def test_a_model_that_passes_the_probe_set_is_healthy_with_its_score(sync: Reconciler) -> None:
    assert sync.step() == "applied"
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert (status.health, status.served_uri) == (HEALTHY, GOOD)
    total = len(LABELS)
    assert (status.probe_right, status.probe_total, status.probe_min_accuracy) == (total, total, 0.8)
    assert f"recognises 100% of {total} drawings" in status.reason
    assert status.healthy_after_s is not None


def test_the_committed_model_on_one_replica_is_not_healthy_while_serve_rolls_it_out(
    sync: Reconciler, repo: Path
) -> None:
    """/model answers from one replica; Serve reconfigures a share of the replicas at a time and keeps
    the application DEPLOYING until all have the new config (serve_observer's docstring cites Ray)."""
    App.serve_status = "DEPLOYING"
    sync.step()
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert (status.health, status.served_uri) == (PROGRESSING, GOOD)
    assert f"{GOOD} answers; Serve application guessme is DEPLOYING" in status.reason
    assert App.predictions == 0  # not scored before the rollout is done
    App.serve_status = "RUNNING"
    sync.step()
    assert read_status(sync.status_file).health == HEALTHY  # type: ignore[arg-type, union-attr]


def test_a_model_that_loads_but_fails_the_probe_set_is_degraded(
    sync: Reconciler, repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sync.step()
    commit = commit_model_uri(repo, BAD)
    with caplog.at_level(logging.INFO, logger="guessme.sync"):
        sync.step()
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    total = len(LABELS)
    reason = (
        f"probe set: it recognises 0% of {total} drawings (0 right), below promote.verify_min_accuracy 80%"
    )
    assert (status.commit, status.health, status.reason, status.served_uri) == (commit, DEGRADED, reason, BAD)
    assert (status.probe_right, status.probe_total) == (0, total)
    assert status.healthy_after_s is None
    degraded = [r for r in caplog.records if "health=Degraded" in r.getMessage()]
    assert len(degraded) == 1
    assert degraded[0].levelno == logging.ERROR
    assert f"commit={commit[:12]} env=local model_uri={BAD} health=Degraded" in degraded[0].getMessage()
    assert degraded[0].getMessage().endswith(f"reason={reason}")

    scored = App.predictions
    sync.step()  # the verdict holds, and the same model is not scored again
    assert read_status(sync.status_file).health == DEGRADED  # type: ignore[arg-type, union-attr]
    assert App.predictions == scored


def test_the_threshold_is_the_one_committed_with_the_model(sync: Reconciler, repo: Path) -> None:
    """Read at the reconciled commit, like the overlay: lowering it in the same commit admits BAD."""
    sync.step()
    params, key = (repo / "params.yaml").read_text(), "  verify_min_accuracy: "
    assert f"{key}0.8 " in params
    (repo / "params.yaml").write_text(params.replace(f"{key}0.8 ", f"{key}1 "))
    git(repo, "commit", "--quiet", "-am", "only a perfect score passes")
    commit_model_uri(repo, BAD)
    sync.step()
    assert read_status(sync.status_file).health == DEGRADED  # type: ignore[arg-type, union-attr]
    (repo / "params.yaml").write_text(params.replace(f"{key}0.8 ", key))
    git(repo, "commit", "--quiet", "-am", "the threshold deleted")
    sync.step()
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert status.health == DEGRADED
    assert status.reason.startswith("probe set: cannot score it: params.yaml promote.verify_min_accuracy")


def test_an_unreadable_probe_set_is_degraded(sync: Reconciler, repo: Path) -> None:
    sync.step()
    (repo / PROBE_SET).write_text('{"probes": [{"label": 12}]}')
    git(repo, "commit", "--quiet", "-am", "a broken probe set")
    sync.step()
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert status.health == DEGRADED
    assert status.reason.startswith(
        f"probe set: cannot score it: {PROBE_SET} is not a probe set: probes.0.label"
    )
    assert "\n" not in status.reason


def test_predict_failing_is_progressing_until_the_grace_period_ends(sync: Reconciler, repo: Path) -> None:
    sync.step()
    commit_model_uri(repo, BROKEN)
    sync.step()
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert status.health == PROGRESSING
    assert f"serving {BROKEN}, not yet scored: probe set: /predict answered HTTP 500" in status.reason
    assert status.probe_total is None
    sync.grace_s = 0.0
    sync.step()
    status = read_status(sync.status_file)  # type: ignore[arg-type]
    assert status is not None
    assert status.health == DEGRADED
    assert status.reason.startswith("not served within 0 s: serving")
