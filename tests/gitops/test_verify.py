"""Verification after promotion, without a serving app: what it waits for, and how it reads params.yaml."""

import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from support.http_stub import StubHandler, serving
from support.repo_snapshot import init_repo

from guessme_contracts.deploy_status import DEGRADED, HEALTHY, PROGRESSING, DeployStatus, Health, write_status
from guessme_contracts.probes import PROBE_SET, PROBE_SET_RESOURCE, ProbeScore, parse_probes
from guessme_pipeline.gate import GateParams
from guessme_pipeline.verify import (
    VerificationFailed,
    VerifyParams,
    check,
    cluster_look,
    load_probes,
    local_look,
    recorded_score,
    verify,
    verify_promoted,
    wait_health,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
URI = "models:/guessme-cnn/2"


def status(commit: str, uri: str, health: str, reason: str = "") -> DeployStatus:
    now = time.time()
    return DeployStatus("local", "main", commit, uri, health, reason, 60.0, now, now)


def test_the_repositorys_params_configure_verification() -> None:
    params = VerifyParams.from_params_text((REPO / "params.yaml").read_text())
    assert 0 < params.verify_min_accuracy <= 1
    assert params.verify_timeout_s > 0
    assert params.rollback is False  # opt-in
    GateParams.from_params_file(REPO / "params.yaml")  # the gate reads the same section


VERIFY_KEYS = "  verify_min_accuracy: 0.8\n  verify_timeout_s: 60\n  rollback: false\n"


def test_promote_section_is_still_strict(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(f"promote:\n  min_accuracy: 0.5\n{VERIFY_KEYS}  verify_min_acuracy: 0.9\n")
    with pytest.raises(ValueError, match="verify_min_acuracy"):
        GateParams.from_params_file(path)
    path.write_text(f"promote:\n{VERIFY_KEYS.replace('rollback: false', 'rollback: yes please')}")
    with pytest.raises(ValueError, match="rollback must be true or false"):
        GateParams.from_params_file(path)


@pytest.mark.parametrize("key", ["verify_min_accuracy", "verify_timeout_s", "rollback"])
def test_a_missing_verification_key_fails_like_an_unknown_one(key: str) -> None:
    """params.yaml is the only source: no dataclass default stands in for a deleted key."""
    section = "".join(line + "\n" for line in VERIFY_KEYS.splitlines() if not line.strip().startswith(key))
    with pytest.raises(ValueError, match=key):
        VerifyParams.from_params_text(f"promote:\n{section}")
    assert VerifyParams.from_params_text(f"promote:\n{VERIFY_KEYS}") == VerifyParams(0.8, 60.0, False)


def test_the_probe_set_covers_every_digit() -> None:
    probes = load_probes()
    assert sorted({p.label for p in probes}) == list(range(10))
    assert all(p.drawing["strokes"] and p.drawing["width"] == p.drawing["height"] == 280 for p in probes)


def test_local_look_waits_for_the_sync_to_take_up_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "sync-local.json"
    look = local_look(path, "c2", URI)
    assert look().status == PROGRESSING  # no status file yet
    write_status(path, status("c1", "models:/guessme-cnn/1", HEALTHY))
    assert look() == Health(PROGRESSING, "the sync is at c1, not yet at c2")  # an older commit is healthy
    write_status(path, status("c2", URI, DEGRADED, "load error: boom"))
    assert look() == Health(DEGRADED, "load error: boom")


def test_verification_fails_with_the_reason_when_not_served(tmp_path: Path) -> None:
    def degraded() -> Health:
        return Health(DEGRADED, "load error: models:/guessme-cnn/2: RestException: no such version")

    params = VerifyParams(0.8, verify_timeout_s=5, rollback=False)
    with pytest.raises(VerificationFailed, match="is Degraded: load error"):
        verify(degraded, "http://127.0.0.1:9", URI, params, load_probes())


def recorded(tmp_path: Path, health: str, reason: str, right: int | None) -> Path:
    """A sync status for URI as the sync writes it, with its probe score (right of 20, threshold 0.8)."""
    path = tmp_path / "sync-local.json"
    entry = status("c2", URI, health, reason)
    entry.record_probe(None if right is None else ProbeScore(URI, right, 20, 0.8))
    write_status(path, entry)
    return path


def test_local_verification_takes_the_syncs_verdict_and_score(tmp_path: Path) -> None:
    """Locally the sync scores the probe set; verify reads its verdict and score and sends no probe
    itself (there is no serving app to send one to here)."""
    params = VerifyParams(0.8, verify_timeout_s=5, rollback=False)
    path = recorded(tmp_path, HEALTHY, f"serving {URI}; probe set: ...", right=19)
    result = check(local_look(path, "c2", URI), URI, params, recorded_score(path, URI))
    assert (result["uri"], result["probe_accuracy"]) == (URI, 0.95)

    reason = "probe set: it recognises 10% of 20 drawings (2 right), below promote.verify_min_accuracy 80%"
    path = recorded(tmp_path, DEGRADED, reason, right=2)
    with pytest.raises(VerificationFailed) as failed:
        check(local_look(path, "c2", URI), URI, params, recorded_score(path, URI))
    assert str(failed.value) == f"{URI} is Degraded: {reason}"

    path = recorded(tmp_path, HEALTHY, f"serving {URI}", right=None)  # a sync that did not score it
    with pytest.raises(VerificationFailed, match="the local sync recorded no score for"):
        check(local_look(path, "c2", URI), URI, params, recorded_score(path, URI))


def test_verify_promoted_locally_reads_params_at_the_commit_and_the_syncs_status(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text(f"promote:\n{VERIFY_KEYS}")
    init_repo(repo)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    path = tmp_path / "sync-local.json"
    entry = status(commit, URI, HEALTHY, f"serving {URI}")
    entry.record_probe(ProbeScore(URI, 17, 20, 0.8))
    write_status(path, entry)
    promoted = {"commit": commit, "uri": URI, "committed": True}
    result = verify_promoted(repo, "local", promoted, "local", "http://127.0.0.1:9", path)
    assert result["probe_accuracy"] == 0.85


def test_progressing_past_the_timeout_fails() -> None:
    started = time.monotonic()
    with pytest.raises(
        VerificationFailed, match="Degraded: not served within 0 s, still Progressing: loading"
    ):
        wait_health(lambda: Health(PROGRESSING, "loading"), timeout=0.2, poll_s=0.05)
    assert time.monotonic() - started < 5


class ModelStub(StubHandler):
    """GET /model as the serving app answers it."""

    info: ClassVar[dict[str, object]] = {}

    def do_GET(self) -> None:  # http.server's name for the handler
        self.send_json(200, self.info)


@pytest.fixture
def game() -> Iterator[str]:
    with serving(ModelStub) as url:
        yield url


class ApiError(Exception):
    """What the kubernetes client raises (ApiException carries status and reason)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class RayServices:
    """KubernetesHook.get_custom_object for RayServices: one of the Argo CD health samples, or an error."""

    def __init__(self) -> None:
        self.sample: str | None = None
        self.calls: list[tuple[str, ...]] = []

    def get_custom_object(
        self, group: str, version: str, plural: str, name: str, namespace: str | None = None
    ) -> object:
        self.calls.append((group, version, plural, name, str(namespace)))
        if self.sample is None:
            raise ApiError(404, "Not Found")
        folder = REPO / "platform/argocd/health/ray.io/RayService/testdata"
        return yaml.safe_load((folder / self.sample).read_text())


def test_cluster_look_needs_the_rayservice_ready_then_the_promoted_uri(game: str) -> None:
    k8s = RayServices()
    look = cluster_look(game, URI, "guessme", k8s)
    assert look() == Health(PROGRESSING, "cannot read RayService guessme/guessme-serve: HTTP 404 Not Found")
    assert k8s.calls == [("ray.io", "v1", "rayservices", "guessme-serve", "guessme")]
    k8s.sample = "initializing.yaml"
    assert look() == Health(PROGRESSING, "RayService guessme-serve is not Ready: RayService is initializing")
    k8s.sample = "healthy.yaml"
    ModelStub.info = {"model_uri": URI, "model_version": "2", "last_error": None}
    assert look().status == HEALTHY
    # Ready, but the swap to the promoted version failed: the old model still answers.
    ModelStub.info = {
        "model_uri": "models:/guessme-cnn/1",
        "model_version": "1",
        "last_error": f"t loading {URI}: boom",
    }
    assert look() == Health(DEGRADED, f"load error: {URI}: boom")


def test_the_probe_set_arrives_with_the_contracts_on_a_cluster() -> None:
    """On a cluster the verify task reads the probe set from the guessme-contracts package the Airflow
    image installs (git-sync checks out only pipelines/): it must be that package's data."""
    dockerfile = (REPO / "platform/airflow/Dockerfile").read_text()
    assert "COPY --chown=50000:0 libs/guessme-contracts /tmp/guessme-contracts" in dockerfile
    assert "/tmp/guessme-contracts\n" in dockerfile, "the Airflow image must pip-install the contracts"
    package = REPO / "libs/guessme-contracts/src/guessme_contracts"
    assert package / PROBE_SET_RESOURCE == REPO / PROBE_SET
    shipped = tomllib.loads((REPO / "libs/guessme-contracts/pyproject.toml").read_text())
    patterns = shipped["tool"]["setuptools"]["package-data"]["guessme_contracts"]
    assert any(REPO / PROBE_SET in package.glob(p) for p in patterns), f"{PROBE_SET} is not package data"
    assert load_probes() == list(parse_probes((REPO / PROBE_SET).read_text()))
