"""The serve app's player-data guards on the cluster: one ticket key for every replica, a client
address no player can forge, and a player-data volume the app's disk budget fits in.

- Round tickets (guessme_serve.tickets): a ticket dealt by one replica must verify in any other, so
  every Ray container that can host a Serve replica (head and workers) reads the same key from one
  Secret; platform/create-secrets.sh creates that Secret where the RayService runs.
- Client address (guessme_serve.api._client_key): per-client limits key on `client_ip_header` when
  set, else on the TCP peer. On the cluster the peer is always a proxy (ingress-nginx, or the front
  end's nginx): the NetworkPolicy serve-from-ingress admits no one else to Serve's port 8000
  (tests/manifests/test_manifests_network.py proves it). ingress-nginx sets `X-Real-IP $remote_addr`
  on every proxied request, overwriting a client's (kubernetes/ingress-nginx controller-v1.14.0,
  rootfs/etc/nginx/template/nginx.tmpl, the location block's proxy_set_header list); the front
  end's nginx does the same (tests/manifests/test_manifests_api_routes.py runs it). Locally (`make
  up`) there is no proxy, so no header may be trusted.
- emptyDir sizeLimit (kubernetes.io/docs/concepts/storage/volumes/#emptydir): past it the kubelet
  evicts the pod; past the disk budget the app answers 507 and keeps serving, so the budget (plus
  the one shard being written) must fit below the limit.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from manifest_tools import RAYSERVICE, REPO, Obj, environments, find, pod_specs, serve_config_text

pytestmark = pytest.mark.manifests

CREATE_SECRETS = REPO / "platform/create-secrets.sh"
SERVE_CONFIG = REPO / "apps/guessme-serve/serve-config.yaml"
PROXY_HEADER = "x-real-ip"  # what ingress-nginx overwrites with the address it sees (see above)


def serve_containers(objs: list[Obj]) -> list[tuple[str, Obj]]:
    """(where, container) for every container of the RayService's Ray pods (head and workers)."""
    service = find(objs, "RayService", RAYSERVICE)
    return [
        (f"{where}.{c['name']}", c) for where, pod in pod_specs(service) for c in pod.get("containers", [])
    ]


def ticket_key_refs(objs: list[Obj]) -> tuple[set[tuple[str, str, str]], list[str]]:
    """({(namespace, secret, key)} the Serve containers read the ticket key from, problems)."""
    from guessme_serve.tickets import KEY_ENV

    namespace = find(objs, "RayService", RAYSERVICE)["metadata"]["namespace"]
    refs, problems = set(), []
    for where, container in serve_containers(objs):
        entries = [e for e in container.get("env", []) if e["name"] == KEY_ENV]
        ref = entries[0].get("valueFrom", {}).get("secretKeyRef") if len(entries) == 1 else None
        if not ref:
            problems.append(f"{where}: {KEY_ENV} is not set from a secretKeyRef")
        elif ref.get("optional"):
            problems.append(f"{where}: {KEY_ENV} is optional: a pod without it signs with a key of its own")
        else:
            refs.add((namespace, ref["name"], ref["key"]))
    if len(refs) > 1:
        problems.append(f"the Serve containers read different keys: {sorted(refs)}")
    return refs, problems


STUB_KUBECTL = """#!/usr/bin/env bash
# Records each call; `get` answers from $EXISTING (nothing exists unless it says so).
printf '%s\\0' "$@" >> "$CALLS"; printf '\\n' >> "$CALLS"
if [ "$1" = get ] || [ "$3" = get ]; then
  [ -n "${EXISTING:-}" ] || exit 1
  [ "$3" = get ] && [ "$4" = secret ] && [ "${6:-}" = -o ] && { echo c2VjcmV0; exit 0; }
  exit 0
fi
exit 0
"""


def run_create_secrets(script: Path, tmp_path: Path, existing: bool) -> list[list[str]]:
    """Run the script with a kubectl stub on PATH; the kubectl calls it made."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "kubectl"
    stub.write_text(STUB_KUBECTL)
    stub.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(calls),
        "EXISTING": "1" if existing else "",
    }
    proc = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [line.rstrip("\0").split("\0") for line in calls.read_text().splitlines() if line]


def created_secrets(calls: list[list[str]]) -> dict[tuple[str, str], dict[str, str]]:
    """{(namespace, name): {key: value}} per `kubectl -n NS create secret generic NAME --from-literal=..`"""
    out = {}
    for call in calls:
        if call[:1] == ["-n"] and call[2:5] == ["create", "secret", "generic"]:
            literals = [
                a.removeprefix("--from-literal=") for a in call[6:] if a.startswith("--from-literal=")
            ]
            out[(call[1], call[5])] = dict(lit.split("=", 1) for lit in literals)
    return out


def secret_problems(refs: set[tuple[str, str, str]], calls: list[list[str]]) -> list[str]:
    from guessme_serve.tickets import MIN_KEY_CHARS

    created = created_secrets(calls)
    problems = []
    for namespace, name, key in sorted(refs):
        value = created.get((namespace, name), {}).get(key)
        if value is None:
            problems.append(f"create-secrets.sh does not create {namespace}/{name} with key {key}")
        elif len(value) < MIN_KEY_CHARS:
            problems.append(f"{namespace}/{name}: {len(value)} characters, the app wants {MIN_KEY_CHARS}")
    return problems


@pytest.mark.parametrize("env", environments())
def test_every_serve_container_reads_the_one_ticket_key(env: str, rendered: dict[str, list[Obj]]) -> None:
    refs, problems = ticket_key_refs(rendered[env])
    assert not problems, "\n".join(problems)
    assert len(refs) == 1
    assert len(serve_containers(rendered[env])) >= 2  # head and workers


def test_a_container_without_the_key_is_caught(rendered: dict[str, list[Obj]]) -> None:
    objs = yaml.safe_load(yaml.safe_dump(rendered["local"]))
    worker = find(objs, "RayService", RAYSERVICE)["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    container = worker["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "GUESSME_ROUND_TICKET_KEY"]
    head = find(objs, "RayService", RAYSERVICE)["spec"]["rayClusterConfig"]["headGroupSpec"]
    (entry,) = [
        e for e in head["template"]["spec"]["containers"][0]["env"] if e["name"] == "GUESSME_ROUND_TICKET_KEY"
    ]
    entry["valueFrom"]["secretKeyRef"]["optional"] = True
    _, problems = ticket_key_refs(objs)
    assert problems == [
        "spec.rayClusterConfig.headGroupSpec.ray-head: GUESSME_ROUND_TICKET_KEY is optional: "
        "a pod without it signs with a key of its own",
        "spec.rayClusterConfig.workerGroupSpecs[cpu].ray-worker: GUESSME_ROUND_TICKET_KEY is not set "
        "from a secretKeyRef",
    ]


@pytest.mark.parametrize("env", environments())
def test_create_secrets_creates_the_ticket_key(
    env: str, rendered: dict[str, list[Obj]], tmp_path: Path
) -> None:
    refs, _ = ticket_key_refs(rendered[env])
    problems = secret_problems(refs, run_create_secrets(CREATE_SECRETS, tmp_path, existing=False))
    assert refs
    assert not problems, "\n".join(problems)


def test_create_secrets_keeps_an_existing_key(rendered: dict[str, list[Obj]], tmp_path: Path) -> None:
    refs, _ = ticket_key_refs(rendered["local"])
    calls = run_create_secrets(CREATE_SECRETS, tmp_path, existing=True)
    assert calls  # it did ask
    assert not created_secrets(calls), "an existing secret was created again (a rotated key)"
    assert secret_problems(refs, calls)  # nothing created: the check sees it


def test_a_script_without_the_ticket_key_is_caught(rendered: dict[str, list[Obj]], tmp_path: Path) -> None:
    refs, _ = ticket_key_refs(rendered["local"])
    text = CREATE_SECRETS.read_text()
    line = next(ln for ln in text.splitlines() if "guessme-round-ticket" in ln and not ln.startswith("#"))
    broken = tmp_path / "create-secrets.sh"
    broken.write_text(text.replace(line, ""))
    ((namespace, name, key),) = refs
    assert secret_problems(refs, run_create_secrets(broken, tmp_path, existing=False)) == [
        f"create-secrets.sh does not create {namespace}/{name} with key {key}"
    ]
    short = tmp_path / "short.sh"
    short.write_text(text.replace(line, line.replace("$(rand)", "tooshort")))
    assert secret_problems(refs, run_create_secrets(short, tmp_path, existing=False)) == [
        f"{namespace}/{name}: 8 characters, the app wants 32"
    ]


# --- the client address --------------------------------------------------------------------------


def user_config(text: str) -> dict:
    (app,) = yaml.safe_load(text)["applications"]
    (deployment,) = app["deployments"]
    return dict(deployment.get("user_config") or {})


def client_ip_headers(objs: list[Obj]) -> dict[str, str]:
    """where -> the header each Serve container's replicas would trust, as the app computes it from the
    rendered serveConfigV2 user_config and the container's environment."""
    from guessme_serve.service import ServiceSettings as Settings

    config = user_config(serve_config_text(objs))
    out = {}
    for where, container in serve_containers(objs):
        environ = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        out[where] = Settings.from_user_config(config, environ).client_ip_header
    return out


@pytest.mark.parametrize("env", environments())
def test_cluster_serve_trusts_only_the_ingress_header(env: str, rendered: dict[str, list[Obj]]) -> None:
    headers = client_ip_headers(rendered[env])
    assert len(headers) >= 2  # head and workers
    assert set(headers.values()) == {PROXY_HEADER}, headers


def test_local_serve_trusts_no_header() -> None:
    # `make up` deploys serve-config.yaml as is, and no proxy stands in front of it.
    from guessme_serve.service import ServiceSettings as Settings
    from guessme_serve.ws_connections import CLIENT_IP_HEADER_ENV

    assert Settings.from_user_config(user_config(SERVE_CONFIG.read_text()), {}).client_ip_header == ""
    localdev = [p for p in (REPO / "localdev").rglob("*.py") if CLIENT_IP_HEADER_ENV in p.read_text()]
    assert not localdev, f"{CLIENT_IP_HEADER_ENV} set for `make up`: {localdev}"


def test_a_missing_or_overridden_header_is_caught(rendered: dict[str, list[Obj]]) -> None:
    objs = yaml.safe_load(yaml.safe_dump(rendered["local"]))
    service = find(objs, "RayService", RAYSERVICE)
    worker = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    worker["env"] = [e for e in worker["env"] if e["name"] != "GUESSME_CLIENT_IP_HEADER"]
    assert client_ip_headers(objs)["spec.rayClusterConfig.workerGroupSpecs[cpu].ray-worker"] == ""
    # A user_config value wins over the environment: an empty one would switch the header off.
    text = service["spec"]["serveConfigV2"]
    service["spec"]["serveConfigV2"] = text.replace(
        "model_uri:", 'client_ip_header: ""\n          model_uri:'
    )
    assert set(client_ip_headers(objs).values()) == {""}


# --- the player-data volume ----------------------------------------------------------------------


def volume_problems(objs: list[Obj]) -> list[str]:
    from guessme_serve.rounds import SHARD_MAX_BYTES
    from guessme_serve.service import ServiceSettings as Settings

    budget = int(
        Settings.from_user_config(user_config(serve_config_text(objs)), {}).player_disk_budget_mb * 2**20
    )
    problems = []
    for where, pod in pod_specs(find(objs, "RayService", RAYSERVICE)):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            for mount in c.get("volumeMounts", []):
                if mount["mountPath"] != player_dir(c):
                    continue
                empty = volumes[mount["name"]].get("emptyDir")
                limit = empty.get("sizeLimit") if empty is not None else None
                if empty is not None and (limit is None or quantity(limit) < budget + SHARD_MAX_BYTES):
                    problems.append(
                        f"{where}: player data emptyDir sizeLimit {limit} < the disk budget + a shard"
                    )
    return problems


def player_dir(container: Obj) -> str | None:
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    value = env.get("GUESSME_PLAYER_DATA")
    return value.rsplit("/", 1)[0] if value and value.endswith(".jsonl") else value


def quantity(text: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text.removesuffix(suffix)) * factor)
    return int(text)


@pytest.mark.parametrize("env", environments())
def test_player_data_volume_holds_the_disk_budget(env: str, rendered: dict[str, list[Obj]]) -> None:
    objs = rendered[env]
    assert all(player_dir(c) for _, c in serve_containers(objs))
    problems = volume_problems(objs)
    assert not problems, "\n".join(problems)


def test_a_volume_smaller_than_the_budget_is_caught(rendered: dict[str, list[Obj]]) -> None:
    objs = yaml.safe_load(yaml.safe_dump(rendered["local"]))
    for _, pod in pod_specs(find(objs, "RayService", RAYSERVICE)):
        for v in pod["volumes"]:
            if v["name"] == "player-data":
                v["emptyDir"]["sizeLimit"] = "256Mi"  # as before this change
    assert volume_problems(objs) == [
        f"spec.rayClusterConfig.{group}: player data emptyDir sizeLimit 256Mi < the disk budget + a shard"
        for group in ("headGroupSpec", "workerGroupSpecs[cpu]")
    ]
