"""The training RayJob can run its stages: one entrypoint command, every output on a writable volume.

The image's root filesystem is read-only, so each stage must be told to write under the work volume
(every path option of a stage CLI is required: none defaults to a path), npm needs a writable cache,
and Ray Train's storage must be reachable from every node. The stage script is run for real with a
recording `python`.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from manifest_tools import REPO, Obj, find, render

pytestmark = pytest.mark.manifests

JOB = "guessme-train"
# The RayJob runs the stages of dvc.yaml, in dvc.yaml's order (one source for the pipeline's shape).
STAGES = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
SHELL_OPERATORS = re.compile(r"&&|\|\||[;&|\n`]|\$\(")
SHARED_STORAGE = ("s3://", "gs://", "abfs://")
MIN_DRIVER_MEMORY_GI = 2.0
CLI_SOURCES = REPO / "apps/guessme-train/src/guessme_train"


def memory_gi(quantity: str) -> float:
    units = {"Gi": 1.0, "Mi": 1 / 1024, "G": 1e9 / 2**30, "M": 1e6 / 2**30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / 2**30


def writable_dirs(pod: Obj, container: Obj) -> list[str]:
    """Mount paths of the container's emptyDir volumes that are not mounted read-only."""
    empty = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    return [
        m["mountPath"]
        for m in container.get("volumeMounts", [])
        if m["name"] in empty and not m.get("readOnly")
    ]


def under(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def stage_script(objs: list[Obj], job: Obj) -> tuple[str, str]:
    """(path in the head container, text) of the script the entrypoint runs, from its ConfigMap."""
    head_pod = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    script_path = job["spec"]["entrypoint"].split()[-1]
    for mount in head_pod["containers"][0].get("volumeMounts", []):
        if script_path.startswith(mount["mountPath"].rstrip("/") + "/"):
            volume = next(v for v in head_pod["volumes"] if v["name"] == mount["name"])
            config_map = find(objs, "ConfigMap", volume["configMap"]["name"])
            return script_path, config_map["data"][script_path.rsplit("/", 1)[1]]
    raise LookupError(f"{script_path} is not on a volume of the head pod")


def job_problems(objs: list[Obj]) -> list[str]:
    """Why the training RayJob could not run its stages on a cluster."""
    job = find(objs, "RayJob", JOB)
    spec = job["spec"]
    found: list[str] = []
    if SHELL_OPERATORS.search(spec["entrypoint"].strip()):
        found.append("entrypoint holds shell operators: KubeRay splices it unquoted into sh -c")
    head_pod = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    head = head_pod["containers"][0]
    env = {e["name"]: e.get("value", "") for e in head.get("env", [])}
    writable = writable_dirs(head_pod, head)
    if not under(env.get("GUESSME_WORK", ""), writable):
        found.append(f"GUESSME_WORK {env.get('GUESSME_WORK')!r} is not on a writable volume {writable}")
    if not under(env.get("npm_config_cache", env.get("HOME", "/home/ray")), writable):
        found.append("npm has no writable cache (npm_config_cache or HOME)")
    storage = env.get("GUESSME_RAY_STORAGE", "")
    if spec["rayClusterSpec"].get("workerGroupSpecs"):
        if not storage.startswith(SHARED_STORAGE):
            found.append(f"GUESSME_RAY_STORAGE {storage!r} is not shared storage, but there are worker pods")
    elif not under(storage, writable):
        found.append(f"GUESSME_RAY_STORAGE {storage!r} is not on a writable volume of the head")
    limit = memory_gi(str(head["resources"]["limits"]["memory"]))
    if limit < MIN_DRIVER_MEMORY_GI:
        found.append(f"head (job driver) memory limit {limit:.2f}Gi < {MIN_DRIVER_MEMORY_GI}Gi")
    try:
        stage_script(objs, job)
    except (LookupError, KeyError, StopIteration) as err:
        found.append(f"entrypoint script: {err}")
    return found


def run_stage_script(text: str, tmp_path: Path, env: dict[str, str]) -> list[list[str]]:
    """Run the script with a `python` that records its arguments; the recorded calls."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    fake = bin_dir / "python"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\0" "$@" >> {log}\nprintf "\\n" >> {log}\n')
    fake.chmod(0o755)
    script = tmp_path / "stages.sh"
    script.write_text(text)
    subprocess.run(
        ["sh", str(script)],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env},
        check=True,
        timeout=30,
        cwd=tmp_path,
    )
    return [line.strip("\0").split("\0") for line in log.read_text().splitlines() if line]


def cli_flags(module: str) -> set[str]:
    return set(re.findall(r'add_argument\(\s*"(--[a-z-]+)"', (CLI_SOURCES / f"{module}.py").read_text()))


def call_problems(calls: list[list[str]], work: str, params: str) -> list[str]:
    """Stages out of order, flags a CLI lacks, paths outside the work dir, a missing --params."""
    found: list[str] = []
    modules = [c[1].removeprefix("guessme_train.") for c in calls if c[:1] == ["-m"]]
    if modules != STAGES:
        found.append(f"stages {modules} != {STAGES}")
    for call in calls:
        module = call[1].removeprefix("guessme_train.")
        args = call[2:]
        flags = dict(zip(args[::2], args[1::2], strict=False))
        known = cli_flags(module)
        found += [f"{module}: no option {f}" for f in flags if f not in known]
        if "--params" in known and flags.get("--params") != params:
            found.append(f"{module}: --params is not {params}")
        found += [
            f"{module} {flag} {value} is outside {work}"
            for flag, value in flags.items()
            if flag != "--params" and not under(value, [work])
        ]
        # Every path option the CLI has is required: one left out would stop the job at run time.
        missing = known - set(flags) - {"--params", "--backend", "--summary", "--run-name"}
        found += [f"{module}: {f} is not given" for f in sorted(missing)]
    return found


@pytest.fixture(scope="module")
def train_objs() -> list[Obj]:
    return render(REPO / "apps/guessme-train/k8s")


def test_training_job_can_run(train_objs: list[Obj], rendered: dict[str, list[Obj]]) -> None:
    assert job_problems(train_objs) == []
    for objs in rendered.values():
        assert job_problems(objs) == []


def test_stage_script_writes_only_under_the_work_dir(train_objs: list[Obj], tmp_path: Path) -> None:
    job = find(train_objs, "RayJob", JOB)
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in head["env"]}
    work = tmp_path / "work"
    work.mkdir()
    _, text = stage_script(train_objs, job)
    run_env = {"GUESSME_WORK": str(work), "GUESSME_PARAMS": env["GUESSME_PARAMS"]}
    calls = run_stage_script(text, tmp_path, run_env)
    assert call_problems(calls, str(work), env["GUESSME_PARAMS"]) == []
    assert env["GUESSME_PARAMS"] == "/app/params.yaml"  # where the Dockerfile copies params.yaml


def test_stage_script_stops_at_the_first_failure(train_objs: list[Obj], tmp_path: Path) -> None:
    _, text = stage_script(train_objs, find(train_objs, "RayJob", JOB))
    # A stage that fails (here: before prepare) must end the job, not let later stages run on stale data.
    failing = text.replace("python -m guessme_train.prepare", "false\npython -m guessme_train.prepare", 1)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(subprocess.CalledProcessError):
        run_stage_script(failing, tmp_path, {"GUESSME_WORK": str(work)})
    assert (tmp_path / "calls").read_text().count("guessme_train.") == STAGES.index("prepare")


# --- each check, failing on a broken copy --------------------------------------------------------


def broken(objs: list[Obj], edit: str) -> list[Obj]:
    objs = copy.deepcopy(objs)
    spec = find(objs, "RayJob", JOB)["spec"]
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = head["env"]
    if edit == "chained entrypoint":
        spec["entrypoint"] = "python -m guessme_train.fetch && python -m guessme_train.prepare"
    elif edit == "work on the root filesystem":
        next(e for e in env if e["name"] == "GUESSME_WORK")["value"] = "/app/work"
    elif edit == "no npm cache":
        env[:] = [e for e in env if e["name"] != "npm_config_cache"]
    elif edit == "worker pods with local storage":
        spec["rayClusterSpec"]["workerGroupSpecs"] = [{"groupName": "cpu", "template": {"spec": {}}}]
    elif edit == "small driver":
        head["resources"]["limits"]["memory"] = "512Mi"
    elif edit == "script not mounted":
        head["volumeMounts"] = [m for m in head["volumeMounts"] if m["name"] != "stages"]
    return objs


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("chained entrypoint", "shell operators"),
        ("work on the root filesystem", "GUESSME_WORK"),
        ("no npm cache", "npm"),
        ("worker pods with local storage", "not shared storage"),
        ("small driver", "memory limit"),
        ("script not mounted", "not on a volume"),
    ],
)
def test_broken_job_is_caught(train_objs: list[Obj], edit: str, expected: str) -> None:
    assert any(expected in p for p in job_problems(broken(train_objs, edit)))


def test_relative_or_unknown_stage_paths_are_caught(train_objs: list[Obj], tmp_path: Path) -> None:
    _, text = stage_script(train_objs, find(train_objs, "RayJob", JOB))
    text = text.replace('--metrics "$work/metrics.json"', "--metrics metrics.json", 1)
    text = text.replace("--out-dir", "--outdir", 1)
    text = text.replace('guessme_train.train --params "$params"', "guessme_train.train", 1)
    work = tmp_path / "work"
    work.mkdir()
    calls = run_stage_script(text, tmp_path, {"GUESSME_WORK": str(work)})
    found = call_problems(calls, str(work), "/app/params.yaml")
    assert any("--metrics metrics.json is outside" in p for p in found)
    assert any("prepare: no option --outdir" in p for p in found)
    assert any("train: --params is not /app/params.yaml" in p for p in found)
