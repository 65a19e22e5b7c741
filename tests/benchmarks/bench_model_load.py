"""First load of a registered version in a replica, both paths in one run (guessme_serve.model_holder):

  - new: the registry over REST and the ONNX copy registration stored, through the artifact proxy,
    run by ONNX Runtime (load_from_registry);
  - old: the registry_child fallback, what every first load cost before registration stored a copy
    (a child interpreter imports MLflow and torch.export, loads the pt2 model, exports and checks it);

then the ratio, and each path's memory in a fresh interpreter that only loads the model, as a replica
does (PSS and USS from /proc/self/smaps_rollup, and whether MLflow or torch got imported). The goals
this serves: promotion commit -> Healthy under 5 s (issue 14, tests/gitops/test_verified_deploy.py
prints that) and a lean replica (issue 15).
Figures only: nothing here asserts a speed. The machine is shared: read them with `uptime`'s load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.benchmark

REPO = Path(__file__).resolve().parents[2]
NEW_RUNS = 5
OLD_RUNS = 2

# A fresh interpreter that loads `uri` the way a replica does, by one path, and reports its own
# memory afterwards: the child of the old path has exited by then.
MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys, time
    from guessme_serve import model_holder
    from support.memory import smaps_rollup_kb
    def memory_mb():
        kb = smaps_rollup_kb()
        return kb["Pss"] / 1024, (kb["Private_Clean"] + kb["Private_Dirty"]) / 1024
    before = memory_mb()
    started = time.perf_counter()
    if sys.argv[2] == "old":
        model_holder.check_model(model_holder.load_through_child(sys.argv[1]))
    else:
        model_holder.load_from_registry(sys.argv[1])
    print(json.dumps({
        "load_s": time.perf_counter() - started,
        "before_mb": before,
        "after_mb": memory_mb(),
        "mlflow_imported": any(m == "mlflow" or m.startswith("mlflow.") for m in sys.modules),
        "torch_imported": "torch" in sys.modules,
    }))
    """
)


def _register_untrained() -> str:
    """A real version, registered the way the register stage does it (weights do not matter here)."""
    import torch

    from guessme_train.loop import build_model
    from guessme_train.mlflow_model import log_and_register
    from guessme_train.params import load_params

    params = load_params(REPO / "params.yaml")
    torch.manual_seed(0)
    model = build_model(params.model)
    return log_and_register(model, params, history=[], test_metrics={"test_accuracy": 0.1}, provenance={}).uri


def _fresh(uri: str, path: str, mlflow_server: str) -> dict[str, Any]:
    tests = str(REPO / "tests")  # for support.memory in the probe
    path_env = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "PYTHONPATH": path_env}
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, uri, path], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_first_load_new_path_against_the_registry_child(mlflow_server: str) -> None:
    from guessme_serve.model_holder import check_model, load_from_registry, load_through_child

    uri = _register_untrained()
    load = os.getloadavg()
    new, old = [], []
    for _ in range(NEW_RUNS):
        started = time.perf_counter()
        load_from_registry(uri)
        new.append(time.perf_counter() - started)
    for _ in range(OLD_RUNS):
        started = time.perf_counter()
        check_model(load_through_child(uri))
        old.append(time.perf_counter() - started)
    memory = {path: _fresh(uri, path, mlflow_server) for path in ("new", "old")}
    new_s, old_s = statistics.median(new), statistics.median(old)
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 shared cores: figures are noisy)")
    print(
        f"new path (REST + stored ONNX copy):        median {new_s * 1e3:.0f} ms of {NEW_RUNS}: "
        + ", ".join(f"{s * 1e3:.0f}" for s in new)
    )
    print(
        f"old path (registry_child):                 median {old_s:.2f} s of {OLD_RUNS}: "
        + ", ".join(f"{s:.2f}" for s in old)
    )
    print(f"ratio old / new: {old_s / new_s:.0f}x")
    for path, m in memory.items():
        (pss0, uss0), (pss1, uss1) = m["before_mb"], m["after_mb"]
        print(
            f"fresh replica-like interpreter, {path} path: load {m['load_s']:.2f} s; after imports -> with "
            f"the model: PSS {pss0:.0f} -> {pss1:.0f} MB, USS {uss0:.0f} -> {uss1:.0f} MB; "
            f"MLflow imported: {bool(m['mlflow_imported'])}, torch imported: {bool(m['torch_imported'])}"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    assert not memory["new"]["mlflow_imported"]
    assert not memory["new"]["torch_imported"]
