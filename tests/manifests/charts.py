"""Vendored upstream Helm charts, rendered offline with Helm's own engine as Argo CD would render them.

An Argo CD Application with a Helm chart source renders `<chart>` at `targetRevision` with its
`helm.releaseName`, `helm.valuesObject` and the destination namespace; objects without a namespace
are created in the destination namespace, and the chart's `crds/` are applied too (Argo CD passes
`--include-crds`). This module does the same with `helm_python` (Helm Go SDK v4) on the chart copies
in tests/manifests/charts (or GUESSME_CHARTS_DIR).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
VENDORED_CHARTS = Path(__file__).resolve().parent / "charts"

# Kinds that live outside namespaces (those a chart could render; Argo CD leaves them unnamespaced).
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "PriorityClass",
    "StorageClass",
    "IngressClass",
    "PersistentVolume",
}
VALUES_REFERENCE = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def charts_dir() -> Path | None:
    """GUESSME_CHARTS_DIR if set, else the vendored charts; None if neither exists."""
    setting = os.environ.get("GUESSME_CHARTS_DIR")
    if setting:
        return Path(setting) if Path(setting).is_dir() else None
    return VENDORED_CHARTS if VENDORED_CHARTS.is_dir() else None


def is_chart_application(app: Obj) -> bool:
    return any(s.get("chart") for s in app["spec"].get("sources") or [app["spec"].get("source") or {}])


def chart_source(app: Obj) -> Obj:
    (source,) = [s for s in app["spec"].get("sources") or [app["spec"]["source"]] if s.get("chart")]
    return source


def chart_folder(app: Obj, folder: Path) -> Path:
    source = chart_source(app)
    return folder / f"{source['chart']}-{source['targetRevision']}"


def application_values(app: Obj) -> Obj:
    return dict((chart_source(app).get("helm") or {}).get("valuesObject") or {})


def render_application(app: Obj, folder: Path, values: Obj | None = None, crds: bool = True) -> list[Obj]:
    """Every object Argo CD would apply for a chart Application: templates and crds/ (parsing the
    large KubeRay CRDs takes seconds: `crds=False` leaves them out), namespaced."""
    import helm_python as helm

    source = chart_source(app)
    namespace = app["spec"]["destination"]["namespace"]
    release = (source.get("helm") or {}).get("releaseName") or app["metadata"]["name"]
    with helm.Chart.load(chart_folder(app, folder)) as chart:
        texts = chart.render(
            application_values(app) if values is None else values, name=release, namespace=namespace
        )
        crd_texts = [c["data"] for c in chart.crds] if crds else []
    objs = [
        doc
        for text in [*texts.values(), *crd_texts]
        for doc in yaml.load_all(text, Loader=yaml.CSafeLoader)
        if doc
    ]
    for obj in objs:
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"].setdefault("namespace", namespace)
    return objs


def crd_kinds(objs: list[Obj]) -> set[tuple[str, str]]:
    """(group, kind) of every CustomResourceDefinition among objs."""
    return {
        (o["spec"]["group"], o["spec"]["names"]["kind"])
        for o in objs
        if o["kind"] == "CustomResourceDefinition"
    }


def template_value_paths(chart: Path) -> set[tuple[str, ...]]:
    """Every `.Values.a.b...` path the chart's templates read."""
    found: set[tuple[str, ...]] = set()
    for path in (chart / "templates").rglob("*"):
        if path.is_file():
            found |= {
                tuple(m.group(1).lstrip(".").split(".")) for m in VALUES_REFERENCE.finditer(path.read_text())
            }
    return found


def value_paths(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path of a values tree (lists are leaves: their items are not chart keys)."""
    if isinstance(values, dict):
        for key, value in values.items():
            yield (*prefix, str(key))
            yield from value_paths(value, (*prefix, str(key)))


def unknown_chart_values(values: Obj, read: set[tuple[str, ...]]) -> list[str]:
    """Value keys no template reads: neither a path the templates read nor inside or above one.

    A template that reads `.Values.resources` takes the whole subtree (toYaml), so keys below it are
    known; `.Values.image.tag` makes `image` known as its parent.
    """
    unknown = []
    for path in value_paths(values):
        if not any(path[: len(t)] == t or t[: len(path)] == path for t in read):
            unknown.append(".".join(path))
    # Report the topmost unknown key only.
    return [k for k in unknown if not any(k.startswith(u + ".") for u in unknown)]


def main(argv: list[str]) -> int:
    """`python tests/manifests/charts.py platform/kuberay/application.yaml`: the manifests Argo CD
    would apply for that Application, from the vendored chart (for `kubectl apply --server-side -f -`
    where no Argo CD runs, as in the kind workflow)."""
    if len(argv) != 1:
        print("usage: charts.py <Application file>", file=sys.stderr)
        return 2
    folder = charts_dir()
    if folder is None:
        print("no charts folder: tests/manifests/charts or GUESSME_CHARTS_DIR", file=sys.stderr)
        return 1
    (app,) = [
        d for d in yaml.safe_load_all(Path(argv[0]).read_text()) if d and d.get("kind") == "Application"
    ]
    if not chart_folder(app, folder).is_dir():
        print(f"{chart_folder(app, folder)} is not vendored", file=sys.stderr)
        return 1
    print(yaml.safe_dump_all(render_application(app, folder), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
