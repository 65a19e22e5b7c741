"""Verified deploys end to end: the real sync, Ray Serve app and MLflow registry, under request load.

A good promotion is Healthy and passes the probe set; a version that does not exist, an artifact that
fails to load and a model that loads but fails the probe set (refused by the replicas' probe gate before
the swap, guessme_serve.model_holder) are each Degraded by the sync itself (its log line and status file
carry the one-line reason; the DAG's verify task reads that verdict) and reverted by the opt-in rollback,
while the previous model keeps answering every request (each answer names its version).
Prints the seconds from each commit to its verdict (goals: Healthy < 5 s, Degraded < 10 s, reverted < 20 s).
"""

import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support.repo_snapshot import committed_uri, git, snapshot_repo
from test_promotion_to_serving import Traffic

from guessme_contracts.deploy_status import HEALTHY, DeployStatus, read_status
from guessme_contracts.model_uri import ModelRef
from guessme_pipeline.promote import Candidate, promote
from guessme_pipeline.verify import VerificationFailed, verify_promoted

REPO = Path(__file__).resolve().parents[2]


def wait_status(path: Path, commit: str, healths: set[str], timeout: float = 60) -> DeployStatus:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = read_status(path)
        if status is not None and status.commit == commit and status.health in healths:
            return status
        time.sleep(0.05)
    raise AssertionError(f"{commit[:12]} never {healths}: last status {status}")


def register_broken_artifact() -> str:
    """A registry version whose artifact is not a model: it exists, but loading it fails."""
    import mlflow
    from mlflow import MlflowClient

    with mlflow.start_run(run_name="pytest-broken-artifact") as run:
        mlflow.log_text("this is not an MLmodel file: {", "broken/MLmodel")
    version = MlflowClient().create_model_version(
        "guessme-cnn", f"runs:/{run.info.run_id}/broken", run_id=run.info.run_id
    )
    return f"models:/guessme-cnn/{version.version}"


def register_untrained_model() -> str:
    """A real, loadable model that has learnt nothing: it fails the probe set."""
    import torch

    from guessme_train.loop import build_model
    from guessme_train.mlflow_model import log_and_register
    from guessme_train.params import load_params

    params = load_params(REPO / "params.yaml")
    torch.manual_seed(0)
    registered = log_and_register(
        build_model(params.model),
        params,
        history=[],
        test_metrics={"test_accuracy": 0.1},
        provenance={},
        run_name="pytest-untrained",
    )
    return registered.uri


@pytest.mark.integration
@pytest.mark.usefixtures("restore_serve_app")
def test_promotions_are_verified_and_failures_reverted(
    serve_app: Any, trained_model: Any, second_model_version: Any, tmp_path: Path
) -> None:
    good, start = trained_model, second_model_version
    serve_app.deploy(start.uri)
    repo = snapshot_repo(tmp_path / "repo", start.uri)
    params = (repo / "params.yaml").read_text()
    assert "  rollback: false" in params
    (repo / "params.yaml").write_text(params.replace("  rollback: false", "  rollback: true"))
    git(repo, "commit", "--quiet", "-am", "opt in to rollback")
    status_file = tmp_path / "sync-local.json"
    cmd = [
        sys.executable, "-m", "guessme_local.sync", "--repo", str(repo), "--env", "local",
        "--interval", "0.5", "--grace", "60", "--status-file", str(status_file),
        "--dashboard-url", serve_app.dashboard_url, "--serve-port", str(serve_app.http_port),
    ]  # fmt: skip
    log = tmp_path / "sync.log"
    with open(log, "wb") as out:
        sync = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    traffic = Traffic(serve_app.url)
    load = threading.Thread(target=traffic.run, daemon=True)
    figures: list[str] = []

    def promote_and_verify(uri: str) -> tuple[str, float]:
        started, committed_at = time.monotonic(), time.time()
        result = promote(repo, "local", Candidate(ModelRef.parse(uri), "run"))
        assert result.committed
        promoted = {**result.as_dict(), "uri": uri}
        try:
            verify_promoted(repo, "local", promoted, "local", serve_app.url, status_file)
        finally:
            figures.append(f"{uri}: verify returned after {time.monotonic() - started:.2f} s")
        return result.commit, committed_at

    def expect_reverted(uri: str, reason: str) -> None:
        started, committed_at = time.monotonic(), time.time()
        with pytest.raises(VerificationFailed) as failed:
            promote_and_verify(uri)
        message = str(failed.value)
        verdict = degraded_at(uri, reason)
        assert verdict is not None, f"no Degraded line for {uri} with {reason!r}:\n{log.read_text()}"
        assert reason in message
        assert "\n" not in message
        assert "rollback: reverted" in message
        reverted_s = time.monotonic() - started
        assert committed_uri(repo) == good.uri
        meanwhile = {version for t, version in list(traffic.answers) if t >= started}
        assert meanwhile == {str(good.version)}, f"while {uri} was committed, {meanwhile} answered"
        assert git(repo, "log", "-1", "--format=%s").startswith(f'Revert "deploy(local): {uri}"')
        status = wait_status(status_file, git(repo, "rev-parse", "HEAD"), {HEALTHY})
        back_s = time.monotonic() - started
        figures.append(
            f"{uri} ({reason}): Degraded {verdict - committed_at:.2f} s, "
            f"reverted {reverted_s:.2f} s after the commit, "
            f"{good.uri} Healthy again after {back_s:.2f} s (sync: {status.healthy_after_s} s)"
        )

    def degraded_at(uri: str, reason: str) -> float | None:
        """Wall time of the sync's Degraded log line for `uri` with `reason`, if any."""
        for line in log.read_text().splitlines():
            if f"model_uri={uri} health=Degraded" in line and f"reason={reason}" in line:
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                return stamp.timestamp()
        return None

    try:
        wait_status(status_file, git(repo, "rev-parse", "HEAD"), {HEALTHY}, timeout=120)
        load.start()
        time.sleep(1.0)

        commit, committed_at = promote_and_verify(good.uri)
        healthy = wait_status(status_file, commit, {HEALTHY})
        assert healthy.healthy_after_s is not None
        healthy_s = healthy.synced_at + healthy.healthy_after_s - committed_at
        apply_s = healthy.apply_s or 0.0
        figures.append(
            f"{good.uri}: commit -> Healthy in {healthy_s:.2f} s (the sync took the commit up after "
            f"{healthy.synced_at - committed_at:.2f} s, applied it in {apply_s:.2f} s, then saw it served "
            f"and passing the probe set {healthy.healthy_after_s - apply_s:.2f} s later)"
        )

        expect_reverted("models:/guessme-cnn/999", "load error: models:/guessme-cnn/999")
        expect_reverted(register_broken_artifact(), "load error:")
        untrained = register_untrained_model()
        expect_reverted(untrained, f"load error: {untrained}: ModelRefused: probe set: it recognises")
        time.sleep(0.5)
    finally:
        traffic.stop.set()
        if load.is_alive():
            load.join(timeout=15)
        sync.terminate()
        sync.wait(timeout=15)

    print("\n" + "\n".join(figures))
    print(f"requests throughout: {len(traffic.answers)} answered, {len(traffic.failures)} failed")
    if traffic.failures:  # which kinds, before the assertion cuts the list short
        print(Counter(f[:160] for f in traffic.failures).most_common(5))
    assert traffic.failures == []
    assert traffic.answers[-1][1] == str(good.version)
