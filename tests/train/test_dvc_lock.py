"""dvc.lock agrees with the code: every Git-tracked file it records (a stage's code, params.yaml's
values, the outputs kept in Git) still has the recorded hash, so `dvc status` on a fresh clone with
the data pulled or reproduced reports nothing changed in code or params.

Data that DVC versions outside Git (data/, models/, the players' rounds) is exempt: a clone has it
only after `dvc pull` or `dvc repro`. DVC itself compares, as `dvc status` does (Output.status):
DVC 3 records `hash: md5`, the plain MD5 of the file's bytes; only a legacy 2.x entry without `hash`
is hashed with CRLF turned into LF (dvc/output.py `_compute_hash_info_from_meta`, dvc_data
hashfile/hash.py `Dos2UnixHashStreamFile`). The files compared are the working copy's: on a clean
checkout, as in CI, that is HEAD, and locally a stale lock shows up before the commit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.repo_snapshot import init_repo

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
FIX = "run `make dvc-lock`, then commit dvc.lock with metrics.json and reports/ (docs/architecture.md)"


def git_files(repo: Path) -> set[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    return set(listed.decode().split("\0")) - {""}


def kept_in_git(path: str, tracked: set[str]) -> bool:
    """A file Git tracks, or a folder Git keeps files of. A folder Git keeps only through a
    .gitignore placeholder (data/player: the players' rounds) holds data, not code."""
    if path in tracked:
        return True
    return any(f.startswith(f"{path}/") and Path(f).name != ".gitignore" for f in tracked)


def _hash(item: Any) -> str:
    info = item.get_hash()
    return str(info.value) if info else "missing"


def stale_entries(repo_root: Path) -> list[str]:
    """What `dvc status` would report as changed among the Git-tracked things dvc.lock records."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    locked = (yaml.safe_load((repo_root / "dvc.lock").read_text()) or {}).get("stages", {})
    tracked = git_files(repo_root)
    stale: list[str] = []
    with Repo(str(repo_root)) as repo:
        for stage in repo.index.stages:
            if stage.name not in locked:
                stale.append(f"{stage.name}: the stage is not in dvc.lock")
                continue
            if stage.cmd_changed:
                stale.append(f"{stage.name}: its cmd in dvc.yaml differs from dvc.lock's")
            for item in [*stage.deps, *stage.outs]:
                if isinstance(item, ParamsDependency):
                    for file, params in item.status().items():
                        stale.extend(f"{stage.name}: {file} {key} {how}" for key, how in params.items())
                elif kept_in_git(item.def_path, tracked) and (status := item.status()):
                    recorded = item.hash_info.value if item.hash_info else None
                    stale.append(
                        f"{stage.name}: {item.def_path} {status[item.def_path]}"
                        f" (dvc.lock {recorded}, working copy {_hash(item)})"
                    )
    return stale


def test_dvc_lock_matches_the_code_and_params() -> None:
    stale = stale_entries(REPO)
    assert not stale, f"dvc.lock is stale; {FIX}:\n  " + "\n  ".join(stale)


@pytest.fixture
def lock_copy(tmp_path: Path) -> Path:
    """A Git repository with the pipeline's definition, dvc.lock and every Git-tracked file it records."""
    tracked = git_files(REPO)
    locked = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"].values()
    recorded = {e["path"] for stage in locked for e in [*stage.get("deps", []), *stage.get("outs", [])]}
    wanted = {".dvc/config", ".dvcignore", "dvc.yaml", "dvc.lock", "params.yaml"} | {
        f for f in tracked if any(f == p or f.startswith(f"{p}/") for p in recorded)
    }
    for rel in wanted:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((REPO / rel).read_bytes())
    return init_repo(tmp_path)


def test_each_stale_code_param_and_git_kept_output_is_named(lock_copy: Path) -> None:
    before = set(stale_entries(lock_copy))  # the real lock's state (empty once it is fresh)
    code = lock_copy / "apps/guessme-train/src/guessme_train/prepare.py"
    code.write_text(code.read_text() + "# changed\n")
    params = lock_copy / "params.yaml"
    params.write_text(params.read_text().replace("  epochs: ", "  epochs: 1  # was ", 1))
    (lock_copy / "reports/data.json").write_text("{}\n")
    # Untracked data changes nothing: a clone gets it from `dvc pull` or `dvc repro`.
    (lock_copy / "data/raw").mkdir(parents=True, exist_ok=True)
    (lock_copy / "data/raw/mnist.npz").write_bytes(b"other data")
    (lock_copy / "data/player/rounds.jsonl").write_text('{"round": 1}\n')

    added = set(stale_entries(lock_copy)) - before
    named = {entry.split(" (dvc.lock")[0] for entry in added}
    assert named == {
        "prepare: apps/guessme-train/src/guessme_train/prepare.py modified",
        "train: params.yaml train modified",  # DVC names the section the stage tracks
        "prepare: reports/data.json modified",
        "register: reports/data.json modified",
    }, added


def test_a_data_folder_kept_by_a_gitignore_is_exempt() -> None:
    tracked = {"data/player/.gitignore", "reports/figures/a.png", "apps/x.py"}
    assert kept_in_git("apps/x.py", tracked)
    assert kept_in_git("reports/figures", tracked)
    assert not kept_in_git("data/player", tracked)
    assert not kept_in_git("data/raw/mnist.npz", tracked)
