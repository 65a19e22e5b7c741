"""Where things live in a Guessme clone (the state folder, the environments, the player data), and
the local stack's default ports.

The one definition of these paths. Python reads them from `Layout`; shell reads them from
`python3 -m guessme_contracts.layout shell` (scripts/lib.sh evaluates its `export` lines), so no
script or module re-derives `.guessme/venvs/ml/bin/python` or `data/player` on its own.

STANDARD LIBRARY ONLY, and Python 3.9 syntax at run time: the system `python3` runs this before any
virtual environment exists (scripts/lib.sh, sourced by `scripts/setup.sh`).

Overrides: GUESSME_ROOT (the clone; default: the checkout holding this file), GUESSME_STATE (all
mutable state of the clone; default `<root>/.guessme`), GUESSME_PLAYER_DATA (the players' rounds
folder; default `<root>/data/player`). In `shell` output, the variables scripts/lib.sh always let the
caller override (AIRFLOW_HOME, RAY_AUTH_TOKEN_PATH, DVC_SITE_CACHE_DIR, the ports) keep an exported
value too.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT_ENV = "GUESSME_ROOT"
STATE_ENV = "GUESSME_STATE"
PLAYER_DATA_ENV = "GUESSME_PLAYER_DATA"

# Repository-relative facts (POSIX paths, as dvc.yaml and Git name them).
STATE_DIR = PurePosixPath(".guessme")
PLAYER_DATA = PurePosixPath("data/player")
VENVS = "venvs"
VENV_PYTHON = PurePosixPath("bin/python")
ML, AIRFLOW, TOOLS = "ml", "airflow", "tools"
# The ML interpreter as a clone-relative path: what dvc.yaml's commands name (the state folder at its
# default place, where `scripts/setup.sh ml` links the environment and the pipeline's checkout links it).
ML_PYTHON_IN_CLONE = STATE_DIR / VENVS / ML / VENV_PYTHON
# The local stack's ports (`make up`); each is overridden by exporting the variable.
LOCAL_PORTS = {
    "GUESSME_SERVE_PORT": 8000,
    "GUESSME_MLFLOW_PORT": 5000,
    "GUESSME_RAY_DASHBOARD_PORT": 8265,
    "GUESSME_RAY_PORT": 6380,
    "GUESSME_AIRFLOW_PORT": 8080,
}


def _set(env: Mapping[str, str], name: str) -> Path | None:
    """An override: the variable's path when it is set to something (an empty value is no override)."""
    return Path(env[name]) if env.get(name) else None


def checkout_root() -> Path:
    """The clone that holds this file (libs/guessme-contracts/src/guessme_contracts/layout.py); the
    working directory when the package is installed outside a clone (an image's site-packages)."""
    root = Path(__file__).resolve().parents[4]
    return root if (root / "libs" / "guessme-contracts").is_dir() else Path.cwd()


@dataclass(frozen=True)
class Layout:
    root: Path  # the clone (a Git working copy)
    state: Path  # its mutable state: environments' links, logs, PIDs, caches, run folders
    player_data: Path  # the players' rounds folder the game writes and DVC stage `player` reads

    @classmethod
    def at(cls, root: Path, state: Path | None = None, player_data: Path | None = None) -> Layout:
        """The layout of the clone at `root`: the state folder defaults to `<root>/.guessme`, the players'
        rounds to `<root>/data/player` (a path to a `.jsonl` file, as older configurations gave, means
        its folder)."""
        root = Path(root)
        players = Path(player_data) if player_data else root / PLAYER_DATA
        if players.suffix == ".jsonl":
            players = players.parent
        return cls(root, Path(state) if state else root / STATE_DIR, players)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Layout:
        """GUESSME_ROOT, GUESSME_STATE and GUESSME_PLAYER_DATA when set, else this checkout's defaults."""
        env = os.environ if environ is None else environ
        root = _set(env, ROOT_ENV) or checkout_root()
        return cls.at(root, _set(env, STATE_ENV), _set(env, PLAYER_DATA_ENV))

    # -- environments (linked by scripts/setup.sh from the shared cache) --------------------------
    def venv(self, name: str) -> Path:
        return self.state / VENVS / name

    @property
    def ml_venv(self) -> Path:
        return self.venv(ML)

    @property
    def airflow_venv(self) -> Path:
        return self.venv(AIRFLOW)

    @property
    def tools_venv(self) -> Path:
        return self.venv(TOOLS)

    @property
    def ml_python(self) -> Path:
        """The interpreter with torch, Ray and MLflow (the Airflow environment has none of them)."""
        return self.ml_venv / VENV_PYTHON

    # -- state ----------------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        """PID files and the local sync's status files of the running stack."""
        return self.state / "run"

    @property
    def airflow_home(self) -> Path:
        return self.state / "airflow"

    @property
    def ray_auth_token(self) -> Path:
        return self.state / "ray-auth-token"

    @property
    def downloads(self) -> Path:
        """Raw data downloads (the MNIST tarball), kept across runs."""
        return self.state / "downloads"

    @property
    def ray_results(self) -> Path:
        """Ray Train's run results on a single machine."""
        return self.state / "ray-results"

    @property
    def pipeline_runs(self) -> Path:
        """One scratch folder per DAG run (step results, the run's checkout)."""
        return self.state / "pipeline-runs"

    @property
    def ray_tmp(self) -> Path:
        """Ray's session files (RAY_TMPDIR), or a link to the short folder scripts/lib.sh picks there
        when this path is too long for Ray's Unix sockets (`make clean` removes both)."""
        return self.state / "ray"

    @property
    def local_mlflow(self) -> Path:
        """The local MLflow's database and artifacts (`make up`; a cluster's MLflow keeps its own)."""
        return self.state / "mlflow"

    @property
    def dvc_site_cache(self) -> Path:
        return self.state / "dvc-site-cache"


def shell_exports(layout: Layout, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables scripts/lib.sh exports from the layout (values for `export NAME=VALUE`)."""
    env = os.environ if environ is None else environ
    fixed = {
        ROOT_ENV: layout.root,
        STATE_ENV: layout.state,
        "ML_VENV": layout.ml_venv,
        "AIRFLOW_VENV": layout.airflow_venv,
        "TOOLS_VENV": layout.tools_venv,
        "ML_PYTHON": layout.ml_python,
        "GUESSME_RUN_DIR": layout.run,
        "GUESSME_RAY_TMP": layout.ray_tmp,
        "MPLCONFIGDIR": layout.state / "matplotlib",
        "TORCH_HOME": layout.state / "torch",
    }
    overridable = {
        "AIRFLOW_HOME": layout.airflow_home,
        "RAY_AUTH_TOKEN_PATH": layout.ray_auth_token,
        "DVC_SITE_CACHE_DIR": layout.dvc_site_cache,
    }
    exports = {name: str(path) for name, path in fixed.items()}
    exports.update({name: env.get(name) or str(path) for name, path in overridable.items()})
    exports.update({name: env.get(name) or str(port) for name, port in LOCAL_PORTS.items()})
    return exports


def main(argv: list[str]) -> int:
    if argv != ["shell"]:
        print("usage: python3 -m guessme_contracts.layout shell", file=sys.stderr)
        return 2
    for name, value in shell_exports(Layout.from_env()).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
