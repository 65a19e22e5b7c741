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
- Player data (guessme_serve.rounds): one PersistentVolumeClaim mounted read-write at
  GUESSME_PLAYER_DATA in every Ray pod, so that used tickets, daily quotas, the disk budget and the
  stats, all counted from the shards under a flock of the folder, hold across pods and restarts; big
  enough for the disk budget plus one shard (past the budget the app answers 507 and keeps serving);
  ReadWriteMany, since the pods may sit on different nodes; and mounted read-only where the training
  RayJob's `player` stage reads. How KubeRay builds the pods is encoded below (kuberay_pod).
"""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from manifest_tools import RAYSERVICE, REPO, Obj, environments, find, pod_specs, serve_config_text
from test_manifests_training import JOB, run_stage_script, stage_script

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
# KubeRay v1.7.0 builds each Ray pod from its group's pod template as it is
# (ray-operator/controllers/ray/common/pod.go: DefaultHeadPodTemplate and DefaultWorkerPodTemplate start
# from `headSpec.Template` / `workerSpec.Template`, BuildPod takes that Spec): a persistentVolumeClaim
# volume of the template is the same claim in every pod of the group, however many workers the
# autoscaler adds, and in the pods of the next RayCluster during an upgrade. BuildPod then adds
# emptyDirs of its own to the Ray container (index 0, utils.RayContainerIndex) with addEmptyDir:
# `shared-mem` at /dev/shm (unless rayStartParams set plasma-directory) and, on an autoscaled head,
# `ray-logs` at /tmp/ray. addEmptyDir skips a path the container already mounts, but creates the volume
# only if no volume of that NAME exists (checkIfVolumeExists): a template volume named `shared-mem`
# would be mounted at /dev/shm as well, whatever it is.
KUBERAY_EMPTY_DIRS = {"shared-mem": "/dev/shm", "ray-logs": "/tmp/ray"}
# Environments that run on ONE node (kind or k3d on a laptop or CI runner): there a ReadWriteOnce claim
# serves every pod (kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes: "ReadWriteOnce
# access mode still can allow multiple pods to access the volume when the pods are running on the same
# node"), and kind's local-path class offers nothing else. Everywhere else: ReadWriteMany.
SINGLE_NODE_ENVIRONMENTS = {"local"}


def kuberay_pod(pod: Obj, head_autoscaled: bool, ray_start_params: Obj) -> Obj:
    """The pod spec KubeRay v1.7.0 makes of a group's template, as far as volumes go (BuildPod's
    addEmptyDir calls, above)."""
    built = copy.deepcopy(pod)
    ray = built["containers"][0]
    injected = [] if "plasma-directory" in ray_start_params else ["shared-mem"]
    injected += ["ray-logs"] if head_autoscaled else []
    for name in injected:
        mounts = ray.setdefault("volumeMounts", [])
        if any(m["mountPath"] == KUBERAY_EMPTY_DIRS[name] for m in mounts):
            continue
        if not any(v["name"] == name for v in built.setdefault("volumes", [])):
            built["volumes"].append({"name": name, "emptyDir": {}})
        mounts.append({"name": name, "mountPath": KUBERAY_EMPTY_DIRS[name]})
    return built


def built_ray_pods(service: Obj) -> list[tuple[str, Obj]]:
    """(where, pod spec as KubeRay builds it) for the RayService's head and each worker group."""
    cluster = service["spec"]["rayClusterConfig"]
    groups = {"headGroupSpec": cluster["headGroupSpec"]}
    groups |= {f"workerGroupSpecs[{g['groupName']}]": g for g in cluster.get("workerGroupSpecs", [])}
    autoscaled = bool(cluster.get("enableInTreeAutoscaling"))
    return [
        (
            where,
            kuberay_pod(
                g["template"]["spec"], autoscaled and where == "headGroupSpec", g.get("rayStartParams", {})
            ),
        )
        for where, g in groups.items()
    ]


def mount_of(container: Obj, path: str) -> Obj | None:
    """The volume mount `path` lies on: the deepest mountPath equal to it or above it."""
    found = [m for m in container.get("volumeMounts", []) if under(path, m["mountPath"])]
    return max(found, key=lambda m: len(m["mountPath"]), default=None)


def under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def disk_budget_bytes(objs: list[Obj]) -> int:
    from guessme_serve.service import ServiceSettings as Settings

    config = user_config(serve_config_text(objs))
    return int(Settings.from_user_config(config, {}).player_disk_budget_mb * 2**20)


def serve_claim_problems(objs: list[Obj], env: str) -> tuple[set[str], list[str]]:
    """({claims the Ray pods keep player data on}, why player data would not be one shared folder)."""
    service = find(objs, "RayService", RAYSERVICE)
    claims: set[str] = set()
    problems = []
    for where, pod in built_ray_pods(service):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        ray = pod["containers"][0]
        folder = player_dir(ray)
        mount = mount_of(ray, folder) if folder else None
        if folder is None or mount is None:
            problems.append(f"{where}: no volume holds GUESSME_PLAYER_DATA {folder!r}")
            continue
        name = mount["name"]
        claim = volumes[name].get("persistentVolumeClaim")
        if claim is None:
            kind = next(iter(set(volumes[name]) - {"name"}), "?")
            problems.append(
                f"{where}: {folder} is on volume {name!r} ({kind}), not a claim: one folder per pod"
            )
            continue
        if mount.get("readOnly") or claim.get("readOnly"):
            problems.append(f"{where}: {folder} is mounted read-only")
        others = [m["mountPath"] for m in ray["volumeMounts"] if m["name"] == name and m is not mount]
        if others:
            problems.append(f"{where}: KubeRay mounts the player-data volume {name!r} at {others} too")
        claims.add(claim["claimName"])
    if len(claims) > 1:
        problems.append(f"the Ray pods keep player data on different claims: {sorted(claims)}")
    namespace = service["metadata"]["namespace"]
    for name in sorted(claims):
        problems += claim_object_problems(objs, env, namespace, name)
    return claims, problems


def claim_object_problems(objs: list[Obj], env: str, namespace: str, name: str) -> list[str]:
    from guessme_serve.rounds import SHARD_MAX_BYTES

    found = [
        o
        for o in objs
        if o["kind"] == "PersistentVolumeClaim"
        and o["metadata"]["name"] == name
        and o["metadata"].get("namespace") == namespace
    ]
    if not found:
        return [f"claim {namespace}/{name} is not in the environment"]
    spec = found[0]["spec"]
    modes = set(spec.get("accessModes", []))
    problems = []
    if "ReadWriteMany" not in modes and not (env in SINGLE_NODE_ENVIRONMENTS and "ReadWriteOnce" in modes):
        problems.append(f"claim {name}: access modes {sorted(modes)}, not ReadWriteMany: pods on other nodes")
    size = quantity(str(spec["resources"]["requests"]["storage"]))
    if size < disk_budget_bytes(objs) + SHARD_MAX_BYTES:
        problems.append(
            f"claim {name}: {spec['resources']['requests']['storage']} < the disk budget + a shard"
        )
    return problems


def training_reader_problems(objs: list[Obj], claims: set[str], tmp_path: Path) -> list[str]:
    """Whether the training RayJob's `player` stage reads the claim the game writes (read-only)."""
    job = find(objs, "RayJob", JOB)
    head_pod = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    head = head_pod["containers"][0]
    env = {e["name"]: e.get("value", "") for e in head.get("env", [])}
    scratch = tmp_path / "work"
    scratch.mkdir(exist_ok=True)
    _, text = stage_script(objs, job)
    calls = run_stage_script(text, tmp_path, {"GUESSME_WORK": str(scratch)})
    (args,) = [c[2:] for c in calls if c[:2] == ["-m", "guessme_train.player"]]
    given = args[args.index("--player-dir") + 1]
    folder = str(Path(env["GUESSME_WORK"]) / Path(given).relative_to(scratch))  # where it reads on the pod
    mount = mount_of(head, folder)
    volume: Obj = next((v for v in head_pod["volumes"] if mount and v["name"] == mount["name"]), {})
    claim = volume.get("persistentVolumeClaim") or {}
    if claim.get("claimName") not in claims:
        return [f"training reads player data at {folder}, which is not on the game's claim {sorted(claims)}"]
    if not (mount and mount.get("readOnly")):
        return [f"training mounts the game's claim read-write at {folder}"]
    return []


def player_dir(container: Obj) -> str | None:
    """The folder the serve app in this container keeps rounds in, as the app derives it from its
    environment (guessme_contracts.layout); None if the container does not name one."""
    from guessme_contracts.layout import PLAYER_DATA_ENV, Layout

    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    value = env.get(PLAYER_DATA_ENV)
    return str(Layout.at(Path("/"), player_data=Path(value)).player_data) if value else None


def quantity(text: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text.removesuffix(suffix)) * factor)
    return int(text)


@pytest.mark.parametrize("env", environments())
def test_player_data_is_one_claim_for_every_ray_pod(env: str, rendered: dict[str, list[Obj]]) -> None:
    claims, problems = serve_claim_problems(rendered[env], env)
    assert not problems, "\n".join(problems)
    assert claims == {"guessme-player-data"}
    assert len(built_ray_pods(find(rendered[env], "RayService", RAYSERVICE))) >= 2  # head and workers


@pytest.mark.parametrize("env", environments())
def test_training_reads_the_game_s_claim(env: str, rendered: dict[str, list[Obj]], tmp_path: Path) -> None:
    claims, _ = serve_claim_problems(rendered[env], env)
    assert training_reader_problems(rendered[env], claims, tmp_path) == []


def broken_copy(objs: list[Obj], edit: str) -> list[Obj]:
    objs = yaml.safe_load(yaml.safe_dump(objs))
    cluster = find(objs, "RayService", RAYSERVICE)["spec"]["rayClusterConfig"]
    worker = cluster["workerGroupSpecs"][0]["template"]["spec"]
    claim = next(
        o
        for o in objs
        if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == "guessme-player-data"
    )
    job_head = find(objs, "RayJob", JOB)["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    if edit == "worker on an emptyDir":  # as before this change: one folder per pod
        (volume,) = [v for v in worker["volumes"] if v["name"] == "player-data"]
        del volume["persistentVolumeClaim"]
        volume["emptyDir"] = {"sizeLimit": "1100Mi"}
    elif edit == "volume named like KubeRay's":
        for pod in (cluster["headGroupSpec"]["template"]["spec"], worker):
            for v in pod["volumes"]:
                v["name"] = "shared-mem" if v["name"] == "player-data" else v["name"]
            for m in pod["containers"][0]["volumeMounts"]:
                m["name"] = "shared-mem" if m["name"] == "player-data" else m["name"]
    elif edit == "a worker's own claim":
        (volume,) = [v for v in worker["volumes"] if v["name"] == "player-data"]
        volume["persistentVolumeClaim"]["claimName"] = "guessme-player-data-workers"
    elif edit == "ReadWriteOnce":
        claim["spec"]["accessModes"] = ["ReadWriteOnce"]
    elif edit == "small claim":
        claim["spec"]["resources"]["requests"]["storage"] = "1Gi"
    elif edit == "no claim":
        objs.remove(claim)
    elif edit == "training without the claim":
        job_head["containers"][0]["volumeMounts"] = [
            m for m in job_head["containers"][0]["volumeMounts"] if m["name"] != "player-data"
        ]
    elif edit == "training writes":
        for m in job_head["containers"][0]["volumeMounts"]:
            m.pop("readOnly", None) if m["name"] == "player-data" else None
    return objs


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            "worker on an emptyDir",
            "workerGroupSpecs[cpu]: /data/player is on volume 'player-data' (emptyDir), not a claim",
        ),
        (
            "volume named like KubeRay's",
            "headGroupSpec: KubeRay mounts the player-data volume 'shared-mem' at ['/dev/shm'] too",
        ),
        ("a worker's own claim", "the Ray pods keep player data on different claims"),
        ("ReadWriteOnce", "claim guessme-player-data: access modes ['ReadWriteOnce'], not ReadWriteMany"),
        ("small claim", "claim guessme-player-data: 1Gi < the disk budget + a shard"),
        ("no claim", "claim guessme/guessme-player-data is not in the environment"),
    ],
)
def test_a_player_data_volume_that_is_not_shared_is_caught(
    rendered: dict[str, list[Obj]], edit: str, expected: str
) -> None:
    env = next(e for e in environments() if e not in SINGLE_NODE_ENVIRONMENTS)  # prod: ReadWriteMany
    _, problems = serve_claim_problems(broken_copy(rendered[env], edit), env)
    assert any(p.startswith(expected) for p in problems), problems


def test_read_write_once_passes_only_on_one_node(rendered: dict[str, list[Obj]]) -> None:
    objs = broken_copy(rendered["local"], "ReadWriteOnce")
    assert serve_claim_problems(objs, "local")[1] == []
    assert serve_claim_problems(objs, "a-multi-node-env")[1] == [
        "claim guessme-player-data: access modes ['ReadWriteOnce'], not ReadWriteMany: pods on other nodes"
    ]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [("training without the claim", "not on the game's claim"), ("training writes", "read-write")],
)
def test_a_training_job_that_misses_the_rounds_is_caught(
    rendered: dict[str, list[Obj]], tmp_path: Path, edit: str, expected: str
) -> None:
    objs = broken_copy(rendered["local"], edit)
    (problem,) = training_reader_problems(objs, {"guessme-player-data"}, tmp_path)
    assert expected in problem
