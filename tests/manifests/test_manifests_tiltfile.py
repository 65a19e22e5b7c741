"""The Tiltfile evaluates (starlark with stubbed Tilt builtins); every path and resource it names exists."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import starlark
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


def evaluate(tiltfile: Path) -> TiltCalls:
    tilt = TiltCalls()
    module = starlark.Module()
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
    ast = starlark.parse("Tiltfile", tiltfile.read_text())
    starlark.eval(module, ast, starlark.Globals.standard())
    return tilt


def problems(tiltfile: Path, root: Path) -> list[str]:
    """Paths that do not exist, images nothing uses, resources that render nowhere."""
    tilt = evaluate(tiltfile)
    found: list[str] = []
    objs: list[Obj] = []
    for (path,), _ in tilt.of("kustomize"):
        if not (root / path / "kustomization.yaml").exists():
            found.append(f"kustomize: {path} has no kustomization.yaml")
        else:
            objs += render(root / path)
    images = {c["image"].split(":")[0] for o in objs for c in _containers(o)}
    kinds = WORKLOAD_KINDS | {args[0] for args, _ in tilt.of("k8s_kind")}
    workloads = {o["metadata"]["name"] for o in objs if o["kind"] in kinds}
    for (image, context), kwargs in tilt.of("docker_build"):
        paths = [context, kwargs.get("dockerfile", f"{context}/Dockerfile")]
        paths += [f"{context}/{p}" for p in kwargs.get("only", [])]
        found += [f"docker_build {image}: {p} does not exist" for p in paths if not (root / p).exists()]
        if image not in images:
            found.append(f"docker_build {image}: no rendered container uses it")
    for (name, *_), _ in tilt.of("k8s_resource"):
        if name not in workloads:
            found.append(f"k8s_resource {name}: no such workload in the rendered YAML")
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


def test_starlark_error_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "Tiltfile"
    broken.write_text((REPO / "Tiltfile").read_text() + "\nk8s_resource(undefined_name)\n")
    with pytest.raises(starlark.StarlarkError):
        evaluate(broken)
