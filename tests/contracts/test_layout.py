"""The repository layout: defaults, overrides, the shell exports scripts/lib.sh evaluates, and the
copies that must stay two (dvc.yaml names the interpreter and the players' folder itself, .dvc/config
and scripts/cluster.sh the state folder)."""

import configparser
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

from guessme_contracts import layout
from guessme_contracts.layout import Layout, shell_exports

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_defaults_sit_in_the_clone() -> None:
    lay = Layout.from_env({})
    assert lay.root == REPO == layout.checkout_root()
    assert lay.state == REPO / ".guessme"
    assert lay.ml_python == REPO / ".guessme/venvs/ml/bin/python"
    assert lay.airflow_venv == REPO / ".guessme/venvs/airflow"
    assert lay.player_data == REPO / "data/player"
    assert lay.ml_python == lay.root / layout.ML_PYTHON_IN_CLONE


def test_overrides_win_and_empty_ones_do_not() -> None:
    env = {"GUESSME_ROOT": "/clone", "GUESSME_STATE": "/state", "GUESSME_PLAYER_DATA": "/players"}
    lay = Layout.from_env(env)
    assert (lay.root, lay.state, lay.player_data) == (Path("/clone"), Path("/state"), Path("/players"))
    assert lay.ml_python == Path("/state/venvs/ml/bin/python")
    assert lay.pipeline_runs == Path("/state/pipeline-runs")
    empty = Layout.from_env({"GUESSME_ROOT": "/clone", "GUESSME_STATE": "", "GUESSME_PLAYER_DATA": ""})
    assert (empty.state, empty.player_data) == (Path("/clone/.guessme"), Path("/clone/data/player"))
    # An older configuration named the single rounds file: its folder is meant.
    assert Layout.at(Path("/c"), player_data=Path("/p/rounds.jsonl")).player_data == Path("/p")


def test_the_game_and_the_pipeline_read_one_players_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from guessme_pipeline.settings import PipelineSettings
    from guessme_serve.rounds import default_player_dir

    monkeypatch.setenv("GUESSME_PLAYER_DATA", "/srv/players/rounds.jsonl")  # an older configuration
    assert default_player_dir() == PipelineSettings().layout().player_data == Path("/srv/players")
    monkeypatch.delenv("GUESSME_PLAYER_DATA")
    monkeypatch.setenv("GUESSME_ROOT", "/clone")
    assert default_player_dir() == PipelineSettings().layout().player_data == Path("/clone/data/player")


def test_shell_exports_keep_lib_sh_override_rules() -> None:
    lay = Layout.at(Path("/c"))
    exports = shell_exports(lay, {"AIRFLOW_HOME": "/mine", "ML_PYTHON": "/other/python"})
    assert exports["AIRFLOW_HOME"] == "/mine"  # lib.sh always let the caller choose this one
    assert exports["ML_PYTHON"] == "/c/.guessme/venvs/ml/bin/python"  # ...and never this one
    assert exports["GUESSME_STATE"] == "/c/.guessme"
    assert shell_exports(lay, {})["AIRFLOW_HOME"] == "/c/.guessme/airflow"
    ports = shell_exports(lay, {"GUESSME_SERVE_PORT": "18000"})
    assert (ports["GUESSME_SERVE_PORT"], ports["GUESSME_MLFLOW_PORT"]) == ("18000", "5000")


def test_the_shell_entry_runs_on_the_standard_library_alone(tmp_path: Path) -> None:
    """`python3 -I -S`: no site-packages, no user environment: what a fresh machine's python3 has."""
    state = tmp_path / "my state"  # a space: the exports must be quoted
    env = {"PATH": os.environ["PATH"], "GUESSME_ROOT": str(REPO), "GUESSME_STATE": str(state)}
    code = "import sys; sys.path.insert(0, sys.argv[1]); import runpy; sys.argv[1:] = ['shell'];"
    code += "runpy.run_module('guessme_contracts.layout', run_name='__main__')"
    src = str(REPO / "libs/guessme-contracts/src")
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, src], env=env, capture_output=True, text=True, check=True
    ).stdout
    values = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in out.splitlines())
    assert values["GUESSME_STATE"] == str(state)
    assert values["ML_PYTHON"] == str(state / "venvs/ml/bin/python")
    bad = subprocess.run(
        [sys.executable, "-m", "guessme_contracts.layout", "nonsense"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "usage" in bad.stderr


def test_lib_sh_exports_what_the_layout_says(tmp_path: Path) -> None:
    """scripts/lib.sh reads the layout, and an exported GUESSME_STATE still wins."""
    state = tmp_path / "state"
    names = [
        "GUESSME_STATE",
        "ML_PYTHON",
        "AIRFLOW_VENV",
        "AIRFLOW_HOME",
        "GUESSME_RUN_DIR",
        "GUESSME_RAY_TMP",
    ]
    script = f"source {REPO}/scripts/lib.sh && " + " && ".join(f'echo "${name}"' for name in names)
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_HOME"}
    # RAY_TMPDIR given: lib.sh makes no short /tmp folder for this throwaway state.
    env.update(GUESSME_STATE=str(state), RAY_TMPDIR=str(tmp_path / "ray"))
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    lay = Layout.at(REPO, state)
    expected = [lay.state, lay.ml_python, lay.airflow_venv, lay.airflow_home, lay.run, lay.ray_tmp]
    assert out.split("\n")[: len(names)] == [str(path) for path in expected]


def test_cluster_sh_finds_kubectl_in_the_layout_ml_venv() -> None:
    """Drift: scripts/cluster.sh's preflight runs without Python, so it names the ML venv itself."""
    ml_venv_in_clone = layout.STATE_DIR / layout.VENVS / layout.ML
    script = (REPO / "scripts/cluster.sh").read_text()
    named = set(re.findall(r'"\$root/([^"]*)/bin/kubectl"', script))
    assert named == {str(ml_venv_in_clone)}


def dvc_vars() -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in yaml.safe_load((REPO / "dvc.yaml").read_text())["vars"]:
        found.update(entry)
    return found


# Where each first-party package's code lives in the clone (what a PYTHONPATH must name to import it).
PACKAGE_SOURCES = {
    "guessme_contracts": "libs/guessme-contracts/src",
    "guessme_core": "libs/guessme-core/src",
    "guessme_train": "apps/guessme-train/src",
}


def test_dvc_config_keeps_its_default_remote_in_the_layout_state_folder() -> None:
    """Drift: DVC reads .dvc/config itself (no environment variables there), so the default remote
    names the state folder at its default place; it must stay inside it (`make clean` empties it)."""
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    remote = config["core"]["remote"]
    url = config[f"'remote \"{remote}\"'"]["url"]  # DVC writes the section as ['remote "name"']
    in_clone = PurePosixPath(os.path.normpath(PurePosixPath(".dvc", url)))
    assert in_clone.parts[0] == str(layout.STATE_DIR), f".dvc/config: remote {remote} is {url}"


def test_dvc_yaml_names_the_layout_interpreter_and_code_path() -> None:
    """Drift: dvc.yaml's commands must name the interpreter the layout links into a clone, relative to
    it (DVC runs each command in the clone with the first `python` on PATH: dvc.yaml says why), and put
    on PYTHONPATH every first-party package the training code imports."""
    words = dvc_vars()["py"].split()
    assert words[-1] == str(layout.ML_PYTHON_IN_CLONE)
    pythonpath = dict(w.split("=", 1) for w in words[:-1])["PYTHONPATH"].split(":")
    train_code = "\n".join(p.read_text() for p in (REPO / "apps/guessme-train/src").rglob("*.py"))
    imported = {p for p in PACKAGE_SOURCES if f"import {p}" in train_code or f"from {p}" in train_code}
    assert imported >= {"guessme_train", "guessme_core"}
    missing = sorted(PACKAGE_SOURCES[pkg] for pkg in imported if PACKAGE_SOURCES[pkg] not in pythonpath)
    assert not missing, f"dvc.yaml's PYTHONPATH lacks {missing}, which the training code imports"


def test_dvc_yaml_reads_the_layout_player_folder() -> None:
    """Drift: stage `player` reads and depends on the folder the game writes (Layout.player_data)."""
    player = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["player"]
    folder = str(layout.PLAYER_DATA)
    assert folder in player["deps"]
    cmd = player["cmd"].split()
    assert cmd[cmd.index("--player-dir") + 1] == folder
