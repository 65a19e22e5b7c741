"""Argo CD health checks for KubeRay's kinds (platform/argocd/health), run offline in a real Lua 5.1.

Tested the way Argo CD tests its own `resource_customizations/<group>/<kind>/`: each `health_test.yaml`
lists an input object (testdata/) and the expected status and message. The interpreter is set up like
Argo CD's (util/lua/lua.go at v3.5.1, runLuaWithResourceActionParameters): gopher-lua (Lua 5.1) with
only the package, base, table and a safe os library, the object as the global `obj`, and the script's
returned table as the health; a status outside health.HealthStatusCode is "Unknown" there
(isValidHealthStatusCode). Every sample's status is checked against the vendored KubeRay v1.7.0 CRDs,
so the samples cannot drift from the fields the controller really writes.
"""

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from manifest_tools import REPO, Obj, render

pytestmark = pytest.mark.manifests

HEALTH = REPO / "platform" / "argocd" / "health"
# gitops-engine pkg/health: the codes Argo CD accepts from a health script.
VALID_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def checks() -> list[Path]:
    """<group>/<kind>/ folders holding a health.lua."""
    return sorted(p.parent for p in HEALTH.rglob("health.lua"))


def cases() -> list[Any]:
    out = []
    for folder in checks():
        for test in yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]:
            case_id = f"{folder.name}:{Path(test['inputPath']).stem}"
            out.append(pytest.param(folder, test, id=case_id))
    return out


def run_health_lua(script: str, obj: Obj) -> dict[str, Any]:
    """Run a health script as Argo CD does; returns the health table as a dict."""
    from lupa.lua51 import LuaRuntime

    lua = LuaRuntime(unpack_returned_tuples=True)
    # Argo CD does not open string, math, io, debug or coroutine; without the string library a
    # string has no methods either (`s:find` fails there), so drop its metatable too.
    lua.execute("debug.setmetatable('', nil); string, math, io, debug, coroutine = nil, nil, nil, nil, nil")
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    if result is None:
        return {}
    health = {key: result[key] for key in ("status", "message") if result[key] is not None}
    if health.get("status") not in VALID_STATUSES:
        return {"status": "Unknown", "message": "Lua returned an invalid health status"}
    return health


@pytest.mark.parametrize(("folder", "test"), cases())
def test_health_script_gives_the_expected_status(folder: Path, test: dict[str, Any]) -> None:
    obj = yaml.safe_load((folder / test["inputPath"]).read_text())
    health = run_health_lua((folder / "health.lua").read_text(), obj)
    assert health == test["healthStatus"]


def test_every_status_the_scripts_can_return_is_tested() -> None:
    for folder in checks():
        expected = {
            t["healthStatus"]["status"]
            for t in yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]
        }
        returned = {
            line.split('"')[1]
            for line in (folder / "health.lua").read_text().splitlines()
            if "hs.status = " in line and '"' in line
        }
        assert returned <= expected, f"{folder}: {returned - expected} returned but never tested"


@pytest.mark.parametrize("folder", checks(), ids=lambda p: p.name)
def test_samples_carry_only_status_fields_of_the_kuberay_crd(
    folder: Path, schemas: dict[tuple[str, str], Obj]
) -> None:
    group, kind = folder.parent.name, folder.name
    status_schema = schemas[(f"{group}/v1", kind)]["properties"]["status"]
    for sample in sorted((folder / "testdata").glob("*.yaml")):
        obj = yaml.safe_load(sample.read_text())
        assert (obj["apiVersion"], obj["kind"]) == (f"{group}/v1", kind)
        errors = [
            e.message for e in jsonschema.Draft7Validator(status_schema).iter_errors(obj.get("status", {}))
        ]
        assert errors == [], f"{sample.name}: {errors}"


def test_argocd_cm_carries_each_script_under_the_key_argo_cd_reads() -> None:
    objs = render(HEALTH)
    assert [(o["kind"], o["metadata"]["name"], o["metadata"]["namespace"]) for o in objs] == [
        ("ConfigMap", "argocd-cm", "argocd")
    ]
    data = objs[0]["data"]
    for folder in checks():
        group, kind = folder.parent.name, folder.name
        key = f"resource.customizations.health.{group}_{kind}"
        assert data.pop(key) == (folder / "health.lua").read_text()
        # Argo CD (util/settings/settings.go, appendResourceOverridesFromSplitKeys + convertToOverrideKey)
        # splits the key into 4 on ".", then the last part on "_": exactly two parts give group/kind.
        customization_type, group_kind = key.split(".", 3)[2:]
        assert customization_type == "health"
        assert group_kind.split("_") == [group, kind]
    assert data == {}, f"keys without a script folder: {sorted(data)}"


def test_every_kuberay_kind_an_environment_deploys_has_a_health_check(rendered: dict[str, list[Obj]]) -> None:
    covered = {(p.parent.name, p.name) for p in checks()}
    for env, objs in rendered.items():
        kinds = {
            (o["apiVersion"].split("/")[0], o["kind"]) for o in objs if o["apiVersion"].startswith("ray.io/")
        }
        assert kinds, f"environments/{env} deploys no KubeRay object: this test would check nothing"
        assert kinds <= covered, f"environments/{env}: no Argo CD health check for {kinds - covered}"
