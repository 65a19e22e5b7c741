"""The run's scratch checkout: the DVC stages run in a `git worktree` of the branch head, not in the
developer's working copy, so `dvc repro` rewriting dvc.lock, metrics.json and reports/ never dirties it.

One checkout per DAG run (`<work_dir>/checkout`, detached at the commit the `data` task pinned), shared
by the data, train, evaluate and register tasks and removed by the last of them or by the first that
fails. A task that finds it missing (a retry after a failure) recreates it at the same commit.

DVC's cache is shared with the working copy, and a new checkout starts from the pipeline's last DVC
state (dvc.lock and the uncached outputs, kept in the Git directory by guessme_pipeline.dvc_workspace),
so `dvc repro` restores unchanged stages instead of recomputing them, as in a long-lived working copy.
"""

import json
import shutil
from pathlib import Path

import yaml

from guessme_contracts.git import Git
from guessme_contracts.layout import Layout
from guessme_pipeline.ml import ml_python, run_step
from guessme_pipeline.settings import RunSettings


def checkout_dir(s: RunSettings) -> Path:
    return s.work_dir / "checkout"


def branch_head(s: RunSettings) -> str:
    """The commit the run trains: the head of the branch it promotes on."""
    git = Git(s.repo)
    return git.rev(f"refs/heads/{s.branch}" if s.branch else "HEAD")


def ml_venv(s: RunSettings) -> Path:
    """The ML environment to link into the checkout: the working copy's (scripts/setup.sh links it into
    its state folder), else the pipeline's own ML interpreter's."""
    linked = s.layout.ml_venv
    return linked.resolve() if linked.exists() else Path(ml_python()).parents[1]


def dvc_state_dir(s: RunSettings) -> Path:
    """The pipeline's DVC state for this repository (in the Git directory: out of the working tree)."""
    return Git(s.repo).git_dir() / "guessme-pipeline" / "dvc-state"


def dvc_env(s: RunSettings) -> dict[str, str]:
    """Stage commands keep their state (download cache, Ray results) in the working copy's state folder."""
    return {"GUESSME_STATE": str(s.state_dir)}


def _head(path: Path) -> str | None:
    # `.git` first: the state folder may lie inside the working copy, whose HEAD git would find instead.
    if not (path / ".git").is_file() or not Git(path).ok("rev-parse", "--verify", "HEAD"):
        return None
    return Git(path).rev("HEAD")


def ensure(s: RunSettings, commit: str) -> Path:
    """The run's checkout at `commit`, created (with DVC pointed at the shared cache) unless it exists."""
    path = checkout_dir(s)
    if _head(path) == commit:
        return path
    remove(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    Git(s.repo).run("worktree", "add", "--detach", str(path), commit)
    # Where dvc.yaml's commands find it: the layout's default place in a clone, relative to the checkout.
    venv_link = Layout.at(path).ml_venv
    venv_link.parent.mkdir(parents=True, exist_ok=True)
    venv_link.symlink_to(ml_venv(s), target_is_directory=True)
    _restore_state(dvc_state_dir(s), path)
    _take_player_data(s, path)
    args = ["-m", "guessme_pipeline.dvc_workspace", "setup", "--main", str(s.repo), "--checkout", str(path)]
    run_step("dvc setup", args, path, dvc_env(s))
    return path


def player_snapshot(s: RunSettings) -> Path:
    """The run's fixed copy of the players' data folder (taken by the data task; the game keeps appending)."""
    return s.work_dir / "player-data"


def _take_player_data(s: RunSettings, checkout: Path) -> None:
    """With `train_on_player_data`: the run's snapshot of the rounds goes where DVC stage `player` reads it,
    and the checkout's params.yaml (throwaway, never committed) turns on `data.include_player`, so the
    train split takes them in; dvc.lock then names this player data version. A commit that predates the
    parameter trains as it was."""
    if not s.train_on_player_data:
        return
    params_file = checkout / "params.yaml"
    params = yaml.safe_load(params_file.read_text()) if params_file.is_file() else None
    data = params.get("data") if isinstance(params, dict) else None
    if not isinstance(data, dict) or "include_player" not in data:
        print(
            "player data: this commit's params.yaml has no data.include_player; training without", flush=True
        )
        return
    snapshot = player_snapshot(s)
    if snapshot.is_dir():
        shutil.copytree(snapshot, Layout.at(checkout).player_data, dirs_exist_ok=True)
    data["include_player"] = True
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def _restore_state(state: Path, checkout: Path) -> None:
    manifest = state / "kept.json"  # dvc_workspace.MANIFEST (that module needs DVC: not imported here)
    if not manifest.is_file():
        return
    for rel in json.loads(manifest.read_text()):
        source, target = state / rel, checkout / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        elif source.is_file():
            shutil.copy2(source, target)


def save_state(s: RunSettings) -> None:
    """Keep the checkout's dvc.lock and uncached outputs for the next run (after the last DVC step)."""
    args = ["-m", "guessme_pipeline.dvc_workspace", "save", "--checkout", str(checkout_dir(s))]
    run_step("dvc save state", [*args, "--state", str(dvc_state_dir(s))], checkout_dir(s), dvc_env(s))


def remove(s: RunSettings) -> None:
    """Delete the run's checkout and Git's record of it (nothing else in the working copy changes)."""
    path = checkout_dir(s)
    git = Git(s.repo)
    if path.exists() and not git.ok("worktree", "remove", "--force", "--force", str(path)):
        shutil.rmtree(path, ignore_errors=True)  # not (or no longer) a worktree of this repository
    git.ok("worktree", "prune")
