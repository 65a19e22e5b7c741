"""Every rendered object validates strictly: built-in kinds and the operators' custom resources."""

from __future__ import annotations

import copy

import pytest
from manifest_tools import REPO, Obj, find, render, validate

pytestmark = pytest.mark.manifests


def test_every_object_validates(rendered: dict[str, list[Obj]], schemas: dict) -> None:
    problems = [f"{env}: {p}" for env, objs in rendered.items() for o in objs for p in validate(o, schemas)]
    assert problems == []


def test_the_argo_cd_bootstrap_validates(schemas: dict) -> None:
    """platform/argocd (applied by hand, in no environment): the ApplicationSet's matrix generator too."""
    objs = render(REPO / "platform/argocd")
    assert {o["kind"] for o in objs} == {"AppProject", "ApplicationSet"}
    assert [f"{o['kind']}: {p}" for o in objs for p in validate(o, schemas)] == []


def test_a_misspelt_generator_field_is_caught(schemas: dict) -> None:
    appset = copy.deepcopy(find(render(REPO / "platform/argocd"), "ApplicationSet", "guessme"))
    appset["spec"]["generators"][0]["matrix"]["generators"][0]["git"]["directory"] = [{"path": "x"}]
    assert any("directory" in str(p) for p in validate(appset, schemas))


def test_custom_resources_are_checked_against_crds(rendered: dict[str, list[Obj]], schemas: dict) -> None:
    kinds = {o["kind"] for o in rendered["local"]}
    assert {"RayService", "RayJob", "Application"} <= kinds
    assert {k for _, k in schemas} >= {"RayService", "RayJob", "Application", "ApplicationSet", "AppProject"}


def test_typo_in_rayservice_field_is_caught(rendered: dict[str, list[Obj]], schemas: dict) -> None:
    service = copy.deepcopy(find(rendered["local"], "RayService", "guessme-serve"))
    service["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParam"] = {"num-cpus": "1"}
    problems = [str(p) for p in validate(service, schemas)]
    assert any("rayStartParam" in p for p in problems), problems


def test_wrong_type_in_rayjob_is_caught(rendered: dict[str, list[Obj]], schemas: dict) -> None:
    job = copy.deepcopy(find(rendered["local"], "RayJob", "guessme-train"))
    job["spec"]["shutdownAfterJobFinishes"] = "yes"
    assert validate(job, schemas)


def test_typo_in_builtin_kind_is_caught(rendered: dict[str, list[Obj]], schemas: dict) -> None:
    deployment = copy.deepcopy(find(rendered["local"], "Deployment", "guessme-frontend"))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    problems = [str(p) for p in validate(deployment, schemas)]
    assert any("resource" in p for p in problems), problems


def test_unknown_kind_is_caught(schemas: dict) -> None:
    obj = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "x"}}
    assert any("unknown kind" in str(p) for p in validate(obj, schemas))
