"""Argo CD's ApplicationSet `guessme`, evaluated offline: which Applications it generates from a checkout.

The rules of Argo CD v3.5.1 (argoproj/argo-cd at that tag), encoded:
- docs/operator-manual/applicationset/Generators-Git.md, "Git Generator: Directories": every directory
  of the repository whose path matches an include `path` and no `exclude: true` path ("exclude rules
  take precedence"); directories that begin with `.` are skipped. The parameters are `.path.path`
  (the matched path) and `.path.basename` (its right-most name).
- applicationset/generators/git.go, filterApps: the match is Go's path.Match, so `*` never crosses `/`
  (environments/* finds environments/local but not environments/local/sub).
- docs/operator-manual/applicationset/Generators-Matrix.md, "Using Parameters from one child generator
  in another child generator", and applicationset/generators/matrix.go: the second generator is
  interpolated with each parameter set of the first; each pair is merged into one parameter set.
- The cluster generator yields `.name`, `.server` and `.metadata.labels` for every registered cluster
  whose labels its selector matches (docs/operator-manual/applicationset/Generators-Cluster.md).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
APPSET = Path("platform/argocd/applicationset.yaml")
ENV_LABEL = "guessme.dev/environment"
IN_CLUSTER = "https://kubernetes.default.svc"


def go_path_match(pattern: str, name: str) -> bool:
    """Go's path.Match for the wildcards `*` and `?` (neither matches `/`); other syntax is refused."""
    if any(c in pattern for c in "[\\"):
        raise ValueError(f"pattern {pattern!r}: character classes and escapes are not modelled here")
    regex = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name) is not None


def load_appset(root: Path) -> Obj:
    return dict(yaml.safe_load((root / APPSET).read_text()))


def git_directories(generator: Obj, root: Path) -> list[str]:
    """The directory paths a Git directories generator finds in the checkout at `root`."""
    items = generator["git"]["directories"]
    depths = {p["path"].count("/") for p in items if not p.get("exclude")}
    found: set[str] = set()
    for depth in depths:
        for folder in root.glob("/".join(["*"] * (depth + 1))):
            rel = folder.relative_to(root).as_posix()
            if not folder.is_dir() or any(part.startswith(".") for part in rel.split("/")):
                continue
            included = any(go_path_match(p["path"], rel) for p in items if not p.get("exclude"))
            excluded = any(go_path_match(p["path"], rel) for p in items if p.get("exclude"))
            if included and not excluded:
                found.add(rel)
    return sorted(found)


def environment_generator(appset: Obj) -> Obj:
    """The Git directories generator that finds the environment folders (the matrix's first child)."""
    (matrix,) = appset["spec"]["generators"]
    first, _ = matrix["matrix"]["generators"]
    return dict(first)


def discovered_environments(root: Path) -> list[str]:
    """The environment names Argo CD finds in the checkout at `root`: the folders' base names."""
    return [p.rpartition("/")[2] for p in git_directories(environment_generator(load_appset(root)), root)]


_EXPR = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_FIELD = re.compile(r"\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_INDEX = re.compile(r'index\s+(\.[A-Za-z0-9_.]+)\s+"([^"]+)"')


def _lookup(params: Obj, dotted: str) -> Any:
    value: Any = params
    for key in dotted.lstrip(".").split("."):
        if not isinstance(value, dict) or key not in value:
            raise KeyError(f"map has no entry for key {key!r} (missingkey=error)")
        value = value[key]
    return value


def _evaluate(expr: str, params: Obj) -> str:
    if _FIELD.fullmatch(expr):
        return str(_lookup(params, expr))
    index = _INDEX.fullmatch(expr)
    if index:
        return str(_lookup(params, index[1])[index[2]])
    raise ValueError(f"template expression {{{{ {expr} }}}} is not modelled here")


def render_template(value: Any, params: Obj) -> Any:
    """Go-template the strings of `value` with `params` (field paths and `index`, missingkey=error)."""
    if isinstance(value, str):
        return _EXPR.sub(lambda m: _evaluate(m[1], params), value)
    if isinstance(value, list):
        return [render_template(v, params) for v in value]
    if isinstance(value, dict):
        return {k: render_template(v, params) for k, v in value.items()}
    return value


def sample_clusters(envs: list[str]) -> list[Obj]:
    """Registered clusters as docs/deploy.md sets them up: the in-cluster one labelled `local`, any
    other environment on a remote cluster of its own, each labelled with its environment."""
    return [
        {
            "name": "in-cluster" if env == "local" else env,
            "server": IN_CLUSTER if env == "local" else f"https://{env}.guessme.example:6443",
            "metadata": {"labels": {ENV_LABEL: env, "argocd.argoproj.io/secret-type": "cluster"}},
        }
        for env in envs
    ]


def _selected(cluster: Obj, selector: Obj) -> bool:
    labels = cluster["metadata"]["labels"]
    if selector.get("matchExpressions"):
        raise ValueError("matchExpressions are not modelled here")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def generated_applications(appset: Obj, root: Path, clusters: list[Obj] | None = None) -> list[Obj]:
    """The Applications the ApplicationSet makes from the checkout at `root` and `clusters` (default:
    one sample cluster per discovered environment)."""
    (matrix,) = appset["spec"]["generators"]
    first, second = matrix["matrix"]["generators"]
    if clusters is None:
        clusters = sample_clusters([p.rpartition("/")[2] for p in git_directories(first, root)])
    apps = []
    for folder in git_directories(first, root):
        path_params: Obj = {"path": {"path": folder, "basename": folder.rpartition("/")[2]}}
        interpolated = render_template(second, path_params)
        for cluster in clusters:
            if not _selected(cluster, interpolated["clusters"].get("selector") or {}):
                continue
            params = {**copy.deepcopy(cluster), **path_params}
            app = render_template(copy.deepcopy(appset["spec"]["template"]), params)
            apps.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **app})
    return apps
