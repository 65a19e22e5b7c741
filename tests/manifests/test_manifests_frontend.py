"""The front end on a cluster: nginx starts before Serve exists, and a controller serves the Ingress.

- nginx (ngx_http_proxy_module, proxy_pass): a host name written literally in proxy_pass is
  resolved when the configuration loads, and nginx refuses to start if it does not resolve; with a
  variable in proxy_pass the name is resolved per request by the `resolver` directive (which uses no
  search domains: the name must be fully qualified). KubeRay creates the Serve Service
  (<rayservice>-serve-svc) only once Serve is ready (ray-operator/controllers/ray/
  rayservice_controller.go reconcileServices), after the front end has started.
- nginx image entrypoint (nginxinc/docker-nginx 15-local-resolvers.envsh): with
  NGINX_ENTRYPOINT_LOCAL_RESOLVERS set it exports the container's nameservers as NGINX_LOCAL_RESOLVERS;
  20-envsubst-on-templates.sh substitutes only variables matching NGINX_ENVSUBST_FILTER.
- Ingress (kubernetes.io/docs/concepts/services-networking/ingress/): an Ingress without
  ingressClassName is served only by a default IngressClass; kind has none.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from manifest_tools import RAYSERVICE, REPO, Obj, environments, find

pytestmark = pytest.mark.manifests

TEMPLATE = REPO / "apps/frontend/nginx/default.conf.template"
DOCKERFILE = REPO / "apps/frontend/Dockerfile"
PROXY_PASS = re.compile(r"^\s*(?:location[^{]*\{\s*)?proxy_pass\s+([^;]+);", re.MULTILINE)
INGRESS_CLASS = "nginx"  # ingress-nginx's IngressClass (its annotations are on the Ingress)


def nginx_problems(template: str, dockerfile: str, backend: str, namespace: str) -> list[str]:
    found = []
    targets = PROXY_PASS.findall(template)
    if not targets:
        found.append("default.conf.template: no proxy_pass")
    for target in targets:
        if "${GUESSME_BACKEND}" in target or not target.strip().startswith("$"):
            found.append(
                f"default.conf.template: proxy_pass {target.strip()}: a literal host is resolved at start"
            )
    if not re.search(r"^\s*resolver\s+\$\{NGINX_LOCAL_RESOLVERS\}", template, re.MULTILINE):
        found.append(
            "default.conf.template: no `resolver ${NGINX_LOCAL_RESOLVERS}` for per-request resolution"
        )
    if "NGINX_ENTRYPOINT_LOCAL_RESOLVERS=1" not in dockerfile:
        found.append(
            "Dockerfile: NGINX_ENTRYPOINT_LOCAL_RESOLVERS is not set: NGINX_LOCAL_RESOLVERS stays empty"
        )
    envsubst_filter = re.search(r"NGINX_ENVSUBST_FILTER=(\S+)", dockerfile)
    if not envsubst_filter or not re.search(envsubst_filter.group(1), "NGINX_LOCAL_RESOLVERS"):
        found.append("Dockerfile: NGINX_ENVSUBST_FILTER does not admit NGINX_LOCAL_RESOLVERS")
    host = backend.rsplit(":", 1)[0]
    if host != f"{RAYSERVICE}-serve-svc.{namespace}.svc.cluster.local":
        found.append(f"GUESSME_BACKEND {backend}: not the fully qualified name of KubeRay's Serve Service")
    return found


def backend_of(objs: list[Obj]) -> tuple[str, str]:
    deployment = find(objs, "Deployment", "guessme-frontend")
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    return env["GUESSME_BACKEND"], deployment["metadata"]["namespace"]


@pytest.mark.parametrize("env", environments())
def test_nginx_resolves_the_late_serve_service_per_request(env: str, rendered: dict[str, list[Obj]]) -> None:
    backend, namespace = backend_of(rendered[env])
    assert find(rendered[env], "RayService", RAYSERVICE)["metadata"]["namespace"] == namespace
    problems = nginx_problems(TEMPLATE.read_text(), DOCKERFILE.read_text(), backend, namespace)
    assert not problems, "\n".join(problems)


def test_literal_proxy_pass_and_short_name_are_caught(rendered: dict[str, list[Obj]]) -> None:
    # As before this change.
    template = TEMPLATE.read_text().replace("proxy_pass $backend;", "proxy_pass http://${GUESSME_BACKEND};")
    template = template.replace("resolver ${NGINX_LOCAL_RESOLVERS}", "# resolver")
    dockerfile = DOCKERFILE.read_text().replace("NGINX_ENTRYPOINT_LOCAL_RESOLVERS=1", "X=1")
    dockerfile = dockerfile.replace("^(GUESSME_|NGINX_LOCAL_RESOLVERS$)", "^GUESSME_")
    found = nginx_problems(template, dockerfile, "guessme-serve-serve-svc:8000", "guessme")
    assert (
        "default.conf.template: proxy_pass http://${GUESSME_BACKEND}: a literal host is resolved at start"
        in found
    )
    assert any("no `resolver" in p for p in found)
    assert any("NGINX_ENTRYPOINT_LOCAL_RESOLVERS is not set" in p for p in found)
    assert any("does not admit NGINX_LOCAL_RESOLVERS" in p for p in found)
    assert any("not the fully qualified name" in p for p in found)


def ingress_problems(objs: list[Obj]) -> list[str]:
    found = []
    for ing in (o for o in objs if o["kind"] == "Ingress"):
        name = ing["metadata"]["name"]
        klass = ing["spec"].get("ingressClassName")
        if klass != INGRESS_CLASS:
            found.append(
                f"Ingress {name}: ingressClassName {klass!r}, not {INGRESS_CLASS!r}: no controller serves it"
            )
    return found


@pytest.mark.parametrize("env", environments())
def test_ingress_names_its_class(env: str, rendered: dict[str, list[Obj]]) -> None:
    assert [o for o in rendered[env] if o["kind"] == "Ingress"]
    problems = ingress_problems(rendered[env])
    assert not problems, "\n".join(problems)


def test_ingress_without_class_is_caught(rendered: dict[str, list[Obj]]) -> None:
    objs = [dict(o) for o in rendered["local"] if o["kind"] == "Ingress"]
    objs[0] = {**objs[0], "spec": {k: v for k, v in objs[0]["spec"].items() if k != "ingressClassName"}}
    assert ingress_problems(objs) == [
        "Ingress guessme: ingressClassName None, not 'nginx': no controller serves it"
    ]


def test_template_is_what_the_image_uses() -> None:
    # The checks above read this template and this Dockerfile: the image must render this file.
    assert "COPY --chown=101:101 nginx/default.conf.template /etc/nginx/templates/" in DOCKERFILE.read_text()


# --- the real nginx, where one is installed (`apt-get install nginx-light`): start, no Serve --------


def nginx_test(template: str, tmp_path: Path, backend: str) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the template as the image's entrypoint renders it, with an unresolvable backend."""
    conf = tmp_path / "conf.d"
    conf.mkdir()
    rendered = template.replace("${GUESSME_BACKEND}", backend).replace(
        "${NGINX_LOCAL_RESOLVERS}", "127.0.0.1"
    )
    (conf / "default.conf").write_text(rendered)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = " ".join(f"{kind}_temp_path {{0}};" for kind in kinds)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ access_log off; {temp.format(tmp_path)} include {conf}/*.conf; }}\n"
    )
    return subprocess.run(
        [str(NGINX), "-t", "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


NGINX = shutil.which("nginx") or ""
needs_nginx = pytest.mark.skipif(
    not NGINX, reason="no nginx binary here (apt-get install nginx-light to run it)"
)
# A name no resolver answers here, like the Serve Service before KubeRay creates it.
MISSING_SERVE = "guessme-serve-serve-svc.guessme.svc.cluster.local:8000"


@needs_nginx
def test_nginx_starts_before_the_serve_service_exists(tmp_path: Path) -> None:
    result = nginx_test(TEMPLATE.read_text(), tmp_path, MISSING_SERVE)
    assert result.returncode == 0, result.stderr


@needs_nginx
def test_literal_backend_fails_nginx_at_start(tmp_path: Path) -> None:
    template = TEMPLATE.read_text().replace("proxy_pass $backend;", "proxy_pass http://${GUESSME_BACKEND};")
    result = nginx_test(template, tmp_path, MISSING_SERVE)
    assert result.returncode != 0
    assert "host not found in upstream" in result.stderr
