"""LocalSettings: the local runtime's one settings object (ports, and paths from guessme_contracts.layout)."""

import os
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError
from support.env import unset_env

from guessme_contracts.layout import Layout
from guessme_local.settings import LocalSettings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PORTS = {
    "GUESSME_SERVE_PORT": "serve_port",
    "GUESSME_MLFLOW_PORT": "mlflow_port",
    "GUESSME_RAY_PORT": "ray_port",
    "GUESSME_RAY_DASHBOARD_PORT": "dashboard_port",
    "GUESSME_AIRFLOW_PORT": "airflow_port",
}
READS = (*PORTS, "GUESSME_ROOT", "GUESSME_STATE", "GUESSME_RAY_CPUS", "RAY_TMPDIR", "AIRFLOW_HOME")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return unset_env(monkeypatch, READS)


def test_reads_what_scripts_lib_sh_exports(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {name: str(20000 + i) for i, name in enumerate(PORTS)}
    env |= {"GUESSME_ROOT": str(tmp_path / "clone"), "GUESSME_STATE": str(tmp_path / "state")}
    env |= {"GUESSME_RAY_CPUS": "2", "RAY_TMPDIR": "/tmp/guessme-ray-x", "AIRFLOW_HOME": str(tmp_path / "af")}
    for name, value in env.items():
        clean_env.setenv(name, value)
    s = LocalSettings()
    assert {field: getattr(s, field) for field in PORTS.values()} == {
        field: int(env[name]) for name, field in PORTS.items()
    }
    assert (s.root, s.state, s.ray_cpus) == (tmp_path / "clone", tmp_path / "state", 2)
    assert (s.ray_tmpdir, s.airflow_home) == (Path("/tmp/guessme-ray-x"), tmp_path / "af")
    assert s.dashboard_url == "http://127.0.0.1:20003"


def test_paths_follow_the_contracts_layout(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("GUESSME_ROOT", str(tmp_path))
    s = LocalSettings()
    layout = Layout.at(tmp_path)
    assert (s.state, s.logs, s.pids, s.airflow_home, s.mlflow_dir) == (
        layout.state,
        layout.logs,
        layout.run,
        layout.airflow_home,
        layout.local_mlflow,
    )
    moved = LocalSettings(state=tmp_path / "elsewhere")  # GUESSME_STATE moves everything below it
    assert (moved.logs, moved.airflow_home) == (
        Layout.at(tmp_path, tmp_path / "elsewhere").logs,
        tmp_path / "elsewhere" / "airflow",
    )


@pytest.mark.parametrize("value", ["80OO", "0", "70000"])
def test_a_bad_port_is_a_clear_error(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("GUESSME_SERVE_PORT", value)
    with pytest.raises(ValidationError, match="serve_port"):
        LocalSettings()


def test_a_ray_port_among_rays_worker_ports_is_refused_up_front(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GUESSME_RAY_PORT", "16431")  # `ray start` would fail later, in its own log
    with pytest.raises(ValidationError, match="16431 is in Ray's worker port range 10002-19999"):
        LocalSettings()
    clean_env.setenv("GUESSME_RAY_PORT", "26431")
    assert LocalSettings().ray_port == 26431


def test_scripts_lib_sh_defaults_the_same_ports(tmp_path: Path) -> None:
    """scripts/lib.sh exports the ports for the shell (the system python3 runs guessme_contracts.layout
    before any venv with pydantic exists); LocalSettings defaults to the same LOCAL_PORTS: the shell and
    Python agree."""
    env = {k: v for k, v in os.environ.items() if k not in READS and not k.startswith("GUESSME_")}
    env |= {"GUESSME_STATE": str(tmp_path / "state"), "RAY_TMPDIR": str(tmp_path / "ray")}
    script = f'source "{REPO}/scripts/lib.sh" && ' + " && ".join(f'echo "${name}"' for name in PORTS)
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    shell = dict(zip(PORTS.values(), map(int, out.split()), strict=True))
    fields = LocalSettings.model_fields
    assert shell == {field: fields[field].default for field in PORTS.values()}
