"""checkov on the rendered manifests and the Dockerfiles, with an explicit list of enforced checks.

One checkov run scans the real files and deliberately broken copies side by side: the real ones must
pass every enforced check, and each broken copy must fail the check it was broken for.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from charts import application_values, charts_dir, render_application
from manifest_tools import REPO, Obj, dump, environments, find

pytestmark = pytest.mark.manifests

CHECKOV = Path(os.environ.get("GUESSME_STATE", REPO / ".guessme")) / "venvs/tools/bin/checkov"

KUBERNETES_CHECKS = {
    "CKV_K8S_8": "liveness probe",
    "CKV_K8S_9": "readiness probe",
    "CKV_K8S_10": "CPU requests",
    "CKV_K8S_11": "CPU limits",
    "CKV_K8S_12": "memory requests",
    "CKV_K8S_13": "memory limits",
    "CKV_K8S_14": "image tag fixed, not latest or blank",
    "CKV_K8S_16": "no privileged containers",
    "CKV_K8S_20": "no privilege escalation",
    "CKV_K8S_22": "read-only root filesystem",
    "CKV_K8S_23": "no root containers (runAsNonRoot)",
    "CKV_K8S_28": "NET_RAW dropped",
    "CKV_K8S_31": "seccomp RuntimeDefault",
    "CKV_K8S_37": "capabilities dropped",
}
DOCKERFILE_CHECKS = {
    "CKV_DOCKER_2": "HEALTHCHECK instruction",
    "CKV_DOCKER_3": "a non-root user",
    "CKV_DOCKER_7": "base image pinned, not latest",
    "CKV_DOCKER_8": "last USER is not root",
}
DOCKERFILES = [
    "apps/guessme-serve/Dockerfile",
    "apps/guessme-train/Dockerfile",
    "apps/frontend/Dockerfile",
    "platform/mlflow/Dockerfile",
]


def failures(report: Any) -> dict[str, set[str]]:
    """file path (relative to the scanned folder) -> the enforced check ids it fails."""
    out: dict[str, set[str]] = {}
    for framework in report if isinstance(report, list) else [report]:
        for failed in framework.get("results", {}).get("failed_checks", []):
            out.setdefault(failed["file_path"].lstrip("/"), set()).add(failed["check_id"])
    return out


@pytest.fixture(scope="module")
def checkov_failures(
    rendered: dict[str, list[Obj]],
    chart_rendered: dict[str, list[Obj]],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict:
    if not CHECKOV.exists():
        pytest.skip(f"checkov not found at {CHECKOV}: run scripts/setup.sh tools")
    scan = tmp_path_factory.mktemp("checkov")
    for env, objs in rendered.items():
        (scan / f"{env}.yaml").write_text(dump(objs))
        # The vendored charts as their Applications render them (tests/manifests/charts).
        chart_objs = [o for o in chart_rendered[env] if o["kind"] != "CustomResourceDefinition"]
        (scan / f"{env}-charts.yaml").write_text(dump(chart_objs))
    for dockerfile in DOCKERFILES:
        dest = scan / "docker" / dockerfile
        dest.parent.mkdir(parents=True)
        shutil.copy(REPO / dockerfile, dest)
    # Broken on purpose: the KubeRay chart rendered without the container securityContext; a
    # Deployment without limits; an image that runs as root on a floating tag.
    kuberay = find(rendered["local"], "Application", "kuberay-operator")
    folder = charts_dir()
    assert folder is not None
    values = {**application_values(kuberay), "securityContext": None}  # null deletes a chart default
    weakened = [
        o for o in render_application(kuberay, folder, values, crds=False) if o["kind"] == "Deployment"
    ]
    (scan / "broken-chart-no-security-context.yaml").write_text(dump(weakened))
    deployment = copy.deepcopy(find(rendered["local"], "Deployment", "guessme-frontend"))
    del deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    (scan / "broken-no-limits.yaml").write_text(dump([deployment]))
    root = scan / "docker/broken-root/Dockerfile"
    root.parent.mkdir(parents=True)
    root.write_text('FROM python:latest\nUSER root\nCMD ["python"]\n')

    checks = ",".join([*KUBERNETES_CHECKS, *DOCKERFILE_CHECKS])
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(scan), "--framework", "kubernetes", "dockerfile", "--check", checks,
         "--skip-download", "--output", "json", "--compact"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return failures(json.loads(proc.stdout))


def test_rendered_manifests_pass(checkov_failures: dict[str, set[str]]) -> None:
    scanned = {f"{env}{suffix}.yaml" for env in environments() for suffix in ("", "-charts")}
    real = {f: ids for f, ids in checkov_failures.items() if f in scanned}
    assert real == {}


def test_dockerfiles_pass(checkov_failures: dict[str, set[str]]) -> None:
    real = {f: ids for f, ids in checkov_failures.items() if f.startswith("docker/") and "broken" not in f}
    assert real == {}


def test_deployment_without_limits_is_caught(checkov_failures: dict[str, set[str]]) -> None:
    assert {"CKV_K8S_11", "CKV_K8S_13"} <= checkov_failures.get("broken-no-limits.yaml", set())


def test_root_dockerfile_is_caught(checkov_failures: dict[str, set[str]]) -> None:
    assert {"CKV_DOCKER_7", "CKV_DOCKER_8"} <= checkov_failures.get("docker/broken-root/Dockerfile", set())


def test_chart_rendered_without_security_context_is_caught(checkov_failures: dict[str, set[str]]) -> None:
    found = checkov_failures.get("broken-chart-no-security-context.yaml", set())
    assert {"CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23"} <= found
