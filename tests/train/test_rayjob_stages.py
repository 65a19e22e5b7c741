"""The training RayJob runs what dvc.yaml says: its entry script (apps/guessme-train/k8s/train-stages.sh)
is generated from dvc.yaml (guessme_train.rayjob_stages), and a stale copy fails here."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.repo_snapshot import init_repo

from guessme_train.rayjob_stages import SCRIPT, StageScriptError, job_command, render

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
PY = "PYTHONPATH=src .venv/bin/python"


def dvc_copy(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A DVC repository holding the project's dvc.yaml (its stages reordered or changed by `edit`)."""
    for rel in (".dvc/config", ".dvcignore", "dvc.yaml", "params.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, tmp_path / rel)
    raw = yaml.safe_load((tmp_path / "dvc.yaml").read_text())
    edit(raw)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return init_repo(tmp_path)


def test_the_committed_entry_script_is_generated_from_dvc_yaml() -> None:
    assert (REPO / SCRIPT).read_text() == render(REPO), (
        f"{SCRIPT} is stale: run `python -m guessme_train.rayjob_stages --repo .` and commit it"
    )


def test_a_changed_stage_or_order_changes_the_script(tmp_path: Path) -> None:
    """What makes the check above fail: a path changed in dvc.yaml, and stages listed out of order
    (DVC's graph still runs a stage after the stages whose outputs it reads)."""

    def edit(raw: dict[str, Any]) -> None:
        stages = raw["stages"]
        stages["fetch"]["cmd"] = stages["fetch"]["cmd"].replace("data/raw/mnist.npz", "data/raw/other.npz")
        stages["fetch"]["outs"] = ["data/raw/other.npz"]
        stages["prepare"]["deps"][0] = "data/raw/other.npz"
        raw["stages"] = {"register": stages.pop("register"), **stages}  # listed first, runs last

    text = render(dvc_copy(tmp_path, edit))
    assert text != render(REPO)
    assert '--out "$work/data/raw/other.npz"' in text
    order = [line.removeprefix("# stage ") for line in text.splitlines() if line.startswith("# stage ")]
    assert order == ["fetch", "player", "prepare", "train", "evaluate", "register"]


def test_paths_go_under_the_work_folder_and_params_to_the_jobs_file() -> None:
    line = job_command("s", f"{PY} -m pkg.mod --params params.yaml --out data/x.npz", PY)
    assert line == 'python -m pkg.mod --params "$params" --out "$work/data/x.npz"'


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        ("python -m pkg.mod --out x", "must start with ${py}"),
        (f"{PY} pkg/mod.py --out x", "expected `-m <module>"),
        (f"{PY} -m pkg.mod --out", "expected `-m <module>"),
        (f"{PY} -m pkg.mod --out /abs/x", "expected --flag <repository path>"),
        (f"{PY} -m pkg.mod --out ../x", "expected --flag <repository path>"),
        (f"{PY} -m pkg.mod out x", "expected --flag <repository path>"),
    ],
)
def test_a_command_the_job_cannot_run_as_is_is_refused(cmd: str, error: str) -> None:
    with pytest.raises(StageScriptError, match=rf"stage s: .*{re.escape(error)}"):
        job_command("s", cmd, PY)
