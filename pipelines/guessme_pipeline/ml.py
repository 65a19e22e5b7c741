"""Run the project's ML code in its own interpreter: the Airflow environment holds no torch/Ray/MLflow.

Each step is `$ML_PYTHON -m <module> ... --out <file.json>`; its output lines go to the task log and the
JSON file is the step's result. A non-zero exit raises StepFailed with the last lines of output.
"""

import collections
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from guessme_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)


class StepFailed(RuntimeError):
    """An ML step exited with an error; the message names the step and ends with its output."""


def ml_python() -> str:
    """The ML interpreter (PipelineSettings.ml_interpreter: $ML_PYTHON, else the clone's linked one)."""
    return str(PipelineSettings().ml_interpreter)


def ml_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    # DVC stage commands and scripts call `python`/`dvc`: make those the ML environment's.
    bin_dir = str(Path(ml_python()).parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_step(name: str, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run `$ML_PYTHON *args` in `cwd`, streaming its output into the log."""
    cmd = [ml_python(), *args]
    log.info("%s: %s (in %s)", name, " ".join(cmd), cwd)
    tail: collections.deque[str] = collections.deque(maxlen=30)
    with subprocess.Popen(
        cmd, cwd=cwd, env=ml_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            print(f"[{name}] {line.rstrip()}", file=sys.stderr, flush=True)
    if proc.returncode != 0:
        raise StepFailed(f"{name} failed with exit status {proc.returncode}:\n" + "\n".join(tail))


def run_json_step(
    name: str, args: list[str], out: Path, cwd: Path, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """`run_step` for a command that writes its result to `out` (passed as `--out`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    run_step(name, [*args, "--out", str(out)], cwd, env)
    if not out.exists():
        raise StepFailed(f"{name} exited 0 but wrote no {out}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result
