"""The Tiltfile evaluates (starlark with stubbed Tilt builtins); every path and resource it names exists,
and Tilt applies each Argo CD AppProject before the Applications that belong to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import starlark
import yaml
from manifest_tools import REPO, Obj, render

pytestmark = pytest.mark.manifests

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


@dataclass
class TiltCalls:
    """What a Tiltfile asked Tilt to do, recorded by the stubs."""

    calls: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = field(default_factory=dict)

    def stub(self, name: str, result: Any = None) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.setdefault(name, []).append((args, kwargs))
            return result(*args) if callable(result) else result

        return record

    def of(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return self.calls.get(name, [])


class TiltfileFailed(RuntimeError):
    """The Tiltfile called fail(): Tilt stops with this message."""


def _fail(message: str) -> None:
    raise TiltfileFailed(message)


def argo_cd_without_bootstrap(cmd: str) -> str:
    """What kubectl prints on a `make cluster MODE=tilt` cluster: Argo CD's CRDs, no ApplicationSet."""
    return "customresourcedefinition.apiextensions.k8s.io/appprojects.argoproj.io" if " crd " in cmd else ""


def evaluate(tiltfile: Path, cluster: Callable[[str], str] = argo_cd_without_bootstrap) -> TiltCalls:
    """Run the Tiltfile; `local(cmd)` answers `cluster(cmd)`."""
    tilt = TiltCalls()
    module = starlark.Module()
    module.add_callable("local", tilt.stub("local", lambda cmd, *_: cluster(cmd)))
    module.add_callable("fail", tilt.stub("fail", _fail))
    for name in (
        "allow_k8s_contexts",
        "docker_build",
        "k8s_yaml",
        "k8s_kind",
        "k8s_resource",
        "local_resource",
    ):
        module.add_callable(name, tilt.stub(name))
    module.add_callable("kustomize", tilt.stub("kustomize", lambda path: f"kustomize:{path}"))
    module["TRIGGER_MODE_MANUAL"] = "manual"
    module["TRIGGER_MODE_AUTO"] = "auto"
    # Tilt's dialect allows `if` at the top level (the standard one only inside `def`).
    dialect = starlark.Dialect.standard()
    dialect.enable_top_level_stmt = True
    ast = starlark.parse("Tiltfile", tiltfile.read_text(), dialect)
    starlark.eval(module, ast, starlark.Globals.standard())
    return tilt


def applied_objects(tilt: TiltCalls, root: Path, found: list[str]) -> list[Obj]:
    """What the Tiltfile's k8s_yaml calls apply: kustomize builds and plain YAML files."""
    objs: list[Obj] = []
    for (path,), _ in tilt.of("kustomize"):
        if not (root / path / "kustomization.yaml").exists():
            found.append(f"kustomize: {path} has no kustomization.yaml")
        else:
            objs += render(root / path)
    for (source,), _ in tilt.of("k8s_yaml"):
        if str(source).startswith("kustomize:"):
            continue
        if not (root / source).is_file():
            found.append(f"k8s_yaml: {source} does not exist")
        else:
            objs += [d for d in yaml.safe_load_all((root / source).read_text()) if d]
    return objs


def selector_matches(selector: str, obj: Obj) -> bool:
    """Tilt's object selector `name[:kind[:namespace]]` (case-insensitive), as in k8s_resource(objects=)."""
    parts = selector.lower().split(":")
    meta = obj.get("metadata", {})
    actual = [meta.get("name", ""), obj.get("kind", ""), meta.get("namespace", "")]
    return all(want == str(have).lower() for want, have in zip(parts, actual, strict=False))


def resource_name(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return str(kwargs.get("new_name") or (args[0] if args else kwargs.get("workload", "")))


def problems(tiltfile: Path, root: Path) -> list[str]:
    """Paths that do not exist, images nothing uses, resources that render nowhere, objects out of order."""
    tilt = evaluate(tiltfile)
    found: list[str] = []
    objs = applied_objects(tilt, root, found)
    images = {c["image"].split(":")[0] for o in objs for c in _containers(o)}
    kinds = WORKLOAD_KINDS | {args[0] for args, _ in tilt.of("k8s_kind")}
    workloads = {o["metadata"]["name"] for o in objs if o["kind"] in kinds}
    for (image, context), kwargs in tilt.of("docker_build"):
        paths = [context, kwargs.get("dockerfile", f"{context}/Dockerfile")]
        paths += [f"{context}/{p}" for p in kwargs.get("only", [])]
        found += [f"docker_build {image}: {p} does not exist" for p in paths if not (root / p).exists()]
        if image not in images:
            found.append(f"docker_build {image}: no rendered container uses it")
    for args, kwargs in tilt.of("k8s_resource"):
        if args and args[0] not in workloads:
            found.append(f"k8s_resource {args[0]}: no such workload in the rendered YAML")
        for selector in kwargs.get("objects", []):
            if not any(selector_matches(selector, o) for o in objs):
                name = resource_name(args, kwargs)
                found.append(f"k8s_resource {name}: object {selector} is applied by nothing")
    return found + project_order_problems(tilt, objs)


def project_order_problems(tilt: TiltCalls, objs: list[Obj]) -> list[str]:
    """Each Argo CD Application's AppProject must be applied by a Tilt resource its own resource depends on.

    Argo CD v3.5 controller/appcontroller.go (projectErrorToCondition): an Application whose
    spec.project names no existing AppProject gets the condition InvalidSpecError "Application
    referencing project <p> which does not exist" and is not synced. Tilt applies the objects it does
    not assign to a resource together in one "uncategorized" apply, in no guaranteed order, so the only
    ordering Tilt promises is resource_deps between resources that name the objects.
    """
    owner: dict[int, str] = {}  # id(object) -> the Tilt resource that applies it
    deps: dict[str, set[str]] = {}
    for args, kwargs in tilt.of("k8s_resource"):
        name = resource_name(args, kwargs)
        deps.setdefault(name, set()).update(kwargs.get("resource_deps", []))
        for selector in kwargs.get("objects", []):
            for o in objs:
                if selector_matches(selector, o):
                    owner[id(o)] = name
    for args, kwargs in tilt.of("local_resource"):
        deps.setdefault(str(args[0]), set()).update(kwargs.get("resource_deps", []))

    def upstream(resource: str) -> set[str]:
        seen: set[str] = set()
        todo = [resource]
        while todo:
            for dep in deps.get(todo.pop(), set()) - seen:
                seen.add(dep)
                todo.append(dep)
        return seen

    projects = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "AppProject"}
    found = []
    for app in (o for o in objs if o.get("kind") == "Application"):
        app_name, project = app["metadata"]["name"], app["spec"].get("project", "default")
        if project == "default":
            continue  # Argo CD creates the default project itself
        if project not in projects:
            found.append(f"Application {app_name}: its AppProject {project} is applied by nothing")
            continue
        project_resource = owner.get(id(projects[project]))
        app_resource = owner.get(id(app))
        if project_resource is None or app_resource is None or project_resource not in upstream(app_resource):
            found.append(
                f"Application {app_name} (resource {app_resource or 'uncategorized'}) is not ordered after "
                f"AppProject {project} (resource {project_resource or 'uncategorized'}): add resource_deps"
            )
    return found


def _containers(obj: Obj) -> list[Obj]:
    """Every container spec anywhere in an object (pod templates, Ray groups, submitters)."""
    out: list[Obj] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("containers"), list):
                out.extend(c for c in node["containers"] if isinstance(c, dict) and "image" in c)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(obj)
    return out


def test_tiltfile_is_consistent() -> None:
    assert problems(REPO / "Tiltfile", REPO) == []


def test_tiltfile_does_what_the_loop_needs() -> None:
    tilt = evaluate(REPO / "Tiltfile")
    assert [args for args, _ in tilt.of("kustomize")] == [("environments/local",)]
    assert {args[0] for args, _ in tilt.of("k8s_kind")} == {"RayService", "RayJob"}
    forwards = {p for _, kw in tilt.of("k8s_resource") for p in kw.get("port_forwards", [])}
    assert {"8000:8080", "5000:5000", "8265:8265"} <= forwards  # game, MLflow, Ray dashboard
    assert any("8080:8080" in kw.get("serve_cmd", "") for _, kw in tilt.of("local_resource"))  # Airflow


def test_image_json_paths_point_at_images(rendered: dict[str, list[Obj]]) -> None:
    """Each JSON path of k8s_kind resolves to an image field of the rendered custom resource."""
    tilt = evaluate(REPO / "Tiltfile")
    for (kind,), kwargs in tilt.of("k8s_kind"):
        (obj,) = [o for o in rendered["local"] if o["kind"] == kind]
        for path in kwargs["image_json_path"]:
            node: Any = obj
            for part in path.strip("{}.").split("."):
                key, _, index = part.partition("[")
                node = node[key]
                if index:
                    node = node[int(index.rstrip("]"))]
            assert isinstance(node, str)
            assert node.startswith(f"guessme-{'serve' if kind == 'RayService' else 'train'}")


def test_missing_path_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "Tiltfile"
    broken.write_text(
        (REPO / "Tiltfile").read_text().replace("apps/guessme-serve/src", "apps/guessme-srv/src")
    )
    assert any("apps/guessme-srv/src does not exist" in p for p in problems(broken, REPO))


def test_unknown_resource_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "Tiltfile"
    broken.write_text(
        (REPO / "Tiltfile").read_text().replace('k8s_resource("mlflow"', 'k8s_resource("mlflw"')
    )
    assert any("k8s_resource mlflw" in p for p in problems(broken, REPO))


def test_appproject_is_applied_before_its_applications() -> None:
    """Defect 6 of issue 12: the Applications of project guessme were applied without the AppProject."""
    tilt = evaluate(REPO / "Tiltfile")
    objs = applied_objects(tilt, REPO, [])
    apps = [o for o in objs if o.get("kind") == "Application"]
    assert {a["spec"]["project"] for a in apps} == {"guessme"}  # the rule below has something to check
    assert project_order_problems(tilt, objs) == []


def test_missing_appproject_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "Tiltfile"
    text = (REPO / "Tiltfile").read_text()
    broken.write_text(text.replace('k8s_yaml("platform/argocd/appproject.yaml")', ""))
    found = problems(broken, REPO)
    assert any("its AppProject guessme is applied by nothing" in p for p in found), found


def test_unordered_appproject_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "Tiltfile"
    text = (REPO / "Tiltfile").read_text()
    assert 'resource_deps=["argocd-project"],' in text
    broken.write_text(text.replace('resource_deps=["argocd-project"],', ""))
    found = problems(broken, REPO)
    wanted = "kuberay-operator (resource operators) is not ordered after AppProject guessme"
    assert any(wanted in p for p in found), found


def test_refuses_a_cluster_that_argo_cd_already_syncs() -> None:
    """Tilt and the bootstrap's ApplicationSet would both own environments/local: the Tiltfile stops."""
    with pytest.raises(starlark.StarlarkError, match=r"TiltfileFailed: .* `guessme` already syncs"):
        evaluate(REPO / "Tiltfile", lambda cmd: "found")


def test_refuses_a_cluster_without_argo_cd() -> None:
    with pytest.raises(starlark.StarlarkError, match="TiltfileFailed: Argo CD is not installed"):
        evaluate(REPO / "Tiltfile", lambda cmd: "")


def test_starlark_error_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "Tiltfile"
    broken.write_text((REPO / "Tiltfile").read_text() + "\nk8s_resource(undefined_name)\n")
    with pytest.raises(starlark.StarlarkError):
        evaluate(broken)
