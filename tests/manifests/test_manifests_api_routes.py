"""Every route the game uses reaches Serve: through the Ingress and through the front end's nginx.

The route list comes from the FastAPI app itself (guessme_serve.api.create_api): a new route that
neither proxies fails here. Routes the game uses: those in the OpenAPI schema, and WebSockets; the
catch-all front-end route and FastAPI's docs are include_in_schema=False (nginx serves the game).

- nginx location selection (nginx.org/en/docs/http/ngx_http_core_module.html#location): an `=`
  location matching exactly wins; otherwise the longest matching prefix (no regex locations here).
- Ingress pathType (kubernetes.io/docs/concepts/services-networking/ingress/#path-types): Exact
  matches the whole path; Prefix matches element-wise on `/`-split paths; the longest path wins.
"""

from __future__ import annotations

import http.client
import http.server
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import ClassVar

import pytest
from manifest_tools import RAYSERVICE, REPO, Obj, environments, find
from support.http_stub import StubHandler, serving

from guessme_local.procs import free_port

pytestmark = pytest.mark.manifests

TEMPLATE = REPO / "apps/frontend/nginx/default.conf.template"
LOCATION = re.compile(r"^\s*location\s+(=\s*)?(\S+)\s*\{(.*?)\}", re.MULTILINE | re.DOTALL)


def game_routes() -> list[str]:
    """The API's own paths the game calls, path parameters filled with a sample value."""
    from fastapi.routing import APIRoute, APIWebSocketRoute

    from guessme_serve.api import create_api

    paths = [
        r.path
        for r in create_api().routes
        if isinstance(r, APIWebSocketRoute) or (isinstance(r, APIRoute) and r.include_in_schema)
    ]
    return sorted({re.sub(r"\{[^}]*\}", "x", p) for p in paths})


def nginx_location(template: str, path: str) -> tuple[str, str] | None:
    """(location, its body) nginx picks for `path`: exact first, else the longest prefix."""
    exact, prefix = {}, {}
    for eq, loc, body in LOCATION.findall(template):
        (exact if eq else prefix)[loc] = body
    if path in exact:
        return f"= {path}", exact[path]
    matches = [loc for loc in prefix if path.startswith(loc)]
    if not matches:
        return None
    best = max(matches, key=len)
    return best, prefix[best]


def nginx_unproxied(template: str, routes: list[str]) -> list[str]:
    found = []
    for path in routes:
        chosen = nginx_location(template, path)
        if chosen is None or "proxy_pass $backend;" not in chosen[1]:
            where = f"location {chosen[0]}" if chosen else "no location"
            found.append(f"nginx: {path} goes to {where}, not proxy_pass $backend")
    return found


def _ingress_matches(rule_path: str, path_type: str, path: str) -> bool:
    if path_type == "Exact":
        return path == rule_path
    want = [p for p in rule_path.split("/") if p]
    return [p for p in path.split("/") if p][: len(want)] == want


def ingress_unrouted(objs: list[Obj], routes: list[str]) -> list[str]:
    ingress = find(objs, "Ingress", "guessme")
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    found = []
    for path in routes:
        matching = [p for p in paths if _ingress_matches(p["path"], p["pathType"], path)]
        # Exact beats Prefix; among prefixes the longest path wins.
        best = max(matching, key=lambda p: (p["pathType"] == "Exact", len(p["path"])), default=None)
        service = best["backend"]["service"]["name"] if best else None
        if service != f"{RAYSERVICE}-serve-svc":
            found.append(f"Ingress: {path} goes to {service}, not {RAYSERVICE}-serve-svc")
    return found


def test_the_route_list_is_the_apps() -> None:
    routes = game_routes()
    # Routes docs/api.md documents (the game calls /ws, /model, /rounds, /rounds/withdrawals): a route
    # list that lost one of these would prove nothing.
    assert {"/ws", "/predict", "/rounds", "/rounds/withdrawals", "/rounds/stats"} <= set(routes)
    assert not {"/{path:path}", "/x", "/docs", "/openapi.json"} & set(routes)


def test_nginx_proxies_every_game_route() -> None:
    problems = nginx_unproxied(TEMPLATE.read_text(), game_routes())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", environments())
def test_ingress_routes_every_game_route_to_serve(env: str, rendered: dict[str, list[Obj]]) -> None:
    problems = ingress_unrouted(rendered[env], game_routes())
    assert not problems, "\n".join(problems)


def test_a_forgotten_route_is_caught(rendered: dict[str, list[Obj]]) -> None:
    # As if issue 17's POST /rounds/withdrawals had been added with only `location = /rounds`.
    template = TEMPLATE.read_text().replace("location /rounds/", "location /roundsx/")
    assert nginx_unproxied(template, game_routes()) == [
        "nginx: /rounds/stats goes to location /, not proxy_pass $backend",
        "nginx: /rounds/withdrawals goes to location /, not proxy_pass $backend",
    ]
    objs = [o for o in rendered["local"] if o["kind"] == "Ingress"]
    ingress = {**objs[0], "spec": {**objs[0]["spec"]}}
    rule = dict(ingress["spec"]["rules"][0])
    rule["http"] = {"paths": [p for p in rule["http"]["paths"] if p["path"] != "/rounds"]}
    ingress["spec"]["rules"] = [rule]
    assert ingress_unrouted([ingress], ["/rounds/withdrawals", "/ws"]) == [
        "Ingress: /rounds/withdrawals goes to guessme-frontend, not guessme-serve-serve-svc"
    ]


def test_path_matching_rules() -> None:
    assert _ingress_matches("/rounds", "Prefix", "/rounds/stats")
    assert not _ingress_matches("/rounds", "Prefix", "/roundsx")
    assert not _ingress_matches("/ws", "Exact", "/ws/x")
    template = "location = /a { proxy_pass $backend; }\nlocation /a/ { return 404; }\nlocation / { }\n"
    assert nginx_location(template, "/a") == ("= /a", " proxy_pass $backend; ")
    assert nginx_location(template, "/a/b") == ("/a/", " return 404; ")
    assert nginx_location(template, "/b") == ("/", " ")


# --- the real nginx, where one is installed (`apt-get install nginx-light`) ------------------------

NGINX = shutil.which("nginx") or ""
needs_nginx = pytest.mark.skipif(not NGINX, reason="no nginx binary here (apt-get install nginx-light)")
SPOOFED = "203.0.113.7"  # what a client claims to be (TEST-NET-3)


class _Recorder(StubHandler):
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def _record(self) -> None:
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    do_GET = do_POST = _record


def proxied_requests(template: str, tmp_path: Path, routes: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Run nginx on the rendered template in front of a recording backend; send each route, as a
    client claiming to be SPOOFED (and /ws as a WebSocket upgrade); return what the backend saw."""
    _Recorder.seen = []
    with serving(_Recorder) as backend:
        conf = template.replace("${GUESSME_BACKEND}", backend.removeprefix("http://"))
        _through_nginx(conf, tmp_path, routes)
    return list(_Recorder.seen)


def _through_nginx(conf: str, tmp_path: Path, routes: list[str]) -> None:
    """Send each route through nginx running `conf` (its server block, with the backend filled in)."""
    port = free_port()
    conf = conf.replace("${NGINX_LOCAL_RESOLVERS}", "127.0.0.1").replace("listen [::]:8080;", "")
    (tmp_path / "default.conf").write_text(conf.replace("listen 8080;", f"listen 127.0.0.1:{port};"))
    temps = " ".join(
        f"{k}_temp_path {tmp_path}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ access_log off; {temps} include {tmp_path}/default.conf; }}\n"
    )
    proc = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf")], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"nginx did not start: {proc.stderr.read() if proc.stderr else ''}"
                    ) from None
                time.sleep(0.05)
        for path in routes:
            headers = {"X-Real-IP": SPOOFED, "X-Forwarded-For": SPOOFED}
            if path == "/ws":
                headers |= {"Upgrade": "websocket", "Connection": "Upgrade"}
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path, headers=headers)
            conn.getresponse().read()
            conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def forwarding_problems(seen: list[tuple[str, dict[str, str]]], routes: list[str]) -> list[str]:
    found = []
    by_path = dict(seen)
    for path in routes:
        headers = by_path.get(path)
        if headers is None:
            found.append(f"{path}: never reached the backend")
            continue
        if headers.get("x-real-ip") != "127.0.0.1":
            found.append(f"{path}: X-Real-IP {headers.get('x-real-ip')!r}, not the peer 127.0.0.1")
        if path == "/ws" and (headers.get("upgrade"), headers.get("connection")) != ("websocket", "upgrade"):
            found.append(
                f"/ws: upgrade not passed ({headers.get('upgrade')!r}, {headers.get('connection')!r})"
            )
    return found


@needs_nginx
def test_nginx_forwards_every_route_with_the_peer_as_x_real_ip(tmp_path: Path) -> None:
    routes = game_routes()
    problems = forwarding_problems(proxied_requests(TEMPLATE.read_text(), tmp_path, routes), routes)
    assert not problems, "\n".join(problems)


@needs_nginx
def test_a_client_claimed_x_real_ip_is_caught(tmp_path: Path) -> None:
    # Without an X-Real-IP of our own nginx passes the client's header on as it came.
    template = TEMPLATE.read_text().replace("proxy_set_header X-Real-IP $remote_addr;", "")
    seen = proxied_requests(template, tmp_path, ["/rounds"])
    assert forwarding_problems(seen, ["/rounds"]) == [
        f"/rounds: X-Real-IP {SPOOFED!r}, not the peer 127.0.0.1"
    ]


@needs_nginx
def test_a_location_with_its_own_proxy_set_header_is_caught(tmp_path: Path) -> None:
    # As /ws had: a location with a proxy_set_header of its own inherits none of the server's.
    template = TEMPLATE.read_text().replace(
        "location = /ws {", "location = /ws {\n        proxy_set_header Upgrade $http_upgrade;"
    )
    seen = proxied_requests(template, tmp_path, ["/ws", "/rounds"])
    assert forwarding_problems(seen, ["/ws", "/rounds"]) == [
        f"/ws: X-Real-IP {SPOOFED!r}, not the peer 127.0.0.1",
        "/ws: upgrade not passed ('websocket', 'close')",
    ]
