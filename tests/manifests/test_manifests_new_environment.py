"""Adding an environment is one folder: a few-line kustomization.yaml and a model.env, nothing else.

A copy of the manifests gets environments/staging (STAGING below, and nothing more); Argo CD's
ApplicationSet and the tests must then find it, and it must pass the checks every environment passes:
strict validation, pod hardening, the served model, the NetworkPolicies, the resource budget, and Argo
CD's admission and sync-order rules. The environments already there must render exactly as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow_chart import load_values
from appset_model import environment_generator, generated_applications, load_appset
from charts import charts_dir
from cluster_model import needed_flows
from conftest import chart_objects, copy_manifests
from manifest_tools import REPO, Obj, environments, find, model_env_value, render, serve_config_text, validate
from test_manifests_argocd import destination_problems as object_admission_problems
from test_manifests_argocd import generated, problems, server_of
from test_manifests_argocd_sync import crd_order_problems, env_applications, generated_for
from test_manifests_argocd_sync import destination_problems as application_problems
from test_manifests_budget import budget_problems, load_budget, workload_requests
from test_manifests_network import network_of, own_namespaces, reachability_problems
from test_manifests_pod_security import problems_of
from test_manifests_serve_config import expected_text, served_model

from guessme_contracts.overlay import environments as contract_environments

pytestmark = pytest.mark.manifests

STAGING_URI = "models:/guessme-cnn/3"
STAGING = {
    "kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
components: [../base]
images:
  - {name: guessme-serve, newName: ghcr.io/guessme-dev/guessme-serve, newTag: 0.2.0-rc.1}
  - {name: guessme-train, newName: ghcr.io/guessme-dev/guessme-train, newTag: 0.2.0-rc.1}
  - {name: guessme-frontend, newName: ghcr.io/guessme-dev/guessme-frontend, newTag: 0.2.0-rc.1}
  - {name: guessme-mlflow, newName: ghcr.io/guessme-dev/guessme-mlflow, newTag: 0.2.0-rc.1}
configMapGenerator:
  - {name: guessme-model, envs: [model.env]}
""",
    "model.env": f"MODEL_URI={STAGING_URI}\n",
}


def add_environment(root: Path, name: str, files: dict[str, str]) -> None:
    folder = root / "environments" / name
    folder.mkdir()
    for file, text in files.items():
        (folder / file).write_text(text)


@pytest.fixture(scope="module")
def with_staging(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_manifests(tmp_path_factory.mktemp("staging") / "repo")
    add_environment(root, "staging", STAGING)
    return root


@pytest.fixture(scope="module")
def staging(with_staging: Path) -> list[Obj]:
    return render(with_staging / "environments/staging")


@pytest.fixture(scope="module")
def staging_charts(staging: list[Obj]) -> list[Obj]:
    folder = charts_dir()
    if folder is None:
        pytest.skip("no charts vendored (tests/manifests/charts/README.md)")
    return chart_objects("staging", staging, folder)


def test_the_new_folder_is_small() -> None:
    assert len(STAGING["kustomization.yaml"].splitlines()) <= 12
    assert set(STAGING) == {"kustomization.yaml", "model.env"}


def test_argo_cd_and_the_tests_find_it(with_staging: Path) -> None:
    assert environments(with_staging) == sorted([*environments(), "staging"])
    assert contract_environments(with_staging) == environments(with_staging)  # what the pipeline reads
    apps = {a["metadata"]["name"]: a for a in generated(with_staging)}
    assert set(apps) == {f"guessme-{e}" for e in [*environments(), "staging"]}
    assert apps["guessme-staging"]["spec"]["source"]["path"] == "environments/staging"
    assert problems(apps["guessme-staging"], with_staging) == []


def test_the_other_environments_are_unchanged(with_staging: Path, rendered: dict[str, list[Obj]]) -> None:
    for env in environments():
        assert render(with_staging / "environments" / env) == rendered[env], env


def test_it_serves_its_own_model(with_staging: Path, staging: list[Obj]) -> None:
    assert model_env_value("staging", with_staging) == STAGING_URI
    text = serve_config_text(staging)
    assert text == expected_text(STAGING_URI)
    assert served_model(text) == STAGING_URI


def test_it_validates_and_its_pods_are_hardened(staging: list[Obj], schemas: dict) -> None:
    assert [f"{o['kind']}: {p}" for o in staging for p in validate(o, schemas)] == []
    assert problems_of(staging) == []


def test_argo_cd_admits_and_orders_it(
    with_staging: Path, staging: list[Obj], staging_charts: list[Obj]
) -> None:
    """Its Applications' destinations and its objects are permitted on a remote cluster labelled
    `staging` (IsDestinationPermitted), and its custom resources wait for their CRDs."""
    project = find(render(with_staging / "platform/argocd"), "AppProject", "guessme")
    apps = env_applications("staging", staging, load_appset(with_staging), with_staging)
    assert server_of("staging") != server_of("local")
    assert application_problems(project, apps, server_of("staging")) == []
    assert object_admission_problems(project, "staging", [*staging, *staging_charts]) == []
    children = {"kuberay-operator": staging_charts}
    assert crd_order_problems(generated_for("staging", with_staging), staging, children) == []


def test_its_network_policies_allow_exactly_what_is_needed(
    staging: list[Obj], staging_charts: list[Obj]
) -> None:
    network, pods = network_of(staging, staging_charts, load_values(REPO))
    assert reachability_problems(network, pods, needed_flows(pods), own_namespaces(staging)) == []


@pytest.mark.parametrize("training", [False, True])
def test_it_fits_the_default_budget(
    training: bool, with_staging: Path, staging: list[Obj], staging_charts: list[Obj]
) -> None:
    budget = load_budget("staging", with_staging)
    assert budget["file"] == "environments/base/budget.yaml"
    workloads = workload_requests(staging, staging_charts, load_values(REPO), training)
    assert budget_problems("staging", budget, workloads, "training" if training else "idle") == []


def test_a_hard_coded_environment_list_would_miss_it(with_staging: Path) -> None:
    """What the folders replace: a generator that names the environments finds no staging."""
    appset = load_appset(with_staging)
    environment_generator(appset)["git"]["directories"] = [
        {"path": "environments/local"},
        {"path": "environments/prod"},
    ]
    names = {a["metadata"]["name"] for a in generated_applications(appset, with_staging)}
    assert names == {"guessme-local", "guessme-prod"}
