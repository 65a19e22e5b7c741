"""The local runtime's settings: one object for `make up`, `make down` and `make status`.

Read from the environment (scripts/lib.sh exports it) with pydantic-settings, like
full-stack-fastapi-template's `app.core.config.Settings`. Every path and default port comes from
guessme_contracts.layout (the one definition of where things live in a clone and which ports
`make up` takes), so no localdev module derives a path or a port of its own.
"""

from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from guessme_contracts.layout import LOCAL_PORTS, Layout, checkout_root

# `ray start` reserves these for its workers (its --min/--max-worker-port defaults) and refuses a head
# port among them ("Ray component worker_ports is trying to use a port number ... that is used by other
# components": ray/_private/parameter.py, RayParams.update_pre_selected_port, Ray 2.60).
RAY_WORKER_PORTS = range(10002, 19999 + 1)
Port = Annotated[int, Field(ge=1, le=65535)]


def _env(name: str, field: str) -> AliasChoices:
    """Read from `name` (no GUESSME_ prefix, or not the field's name); `field` is for keyword use."""
    return AliasChoices(name, field)


def _layout(data: dict[str, Any]) -> Layout:
    return Layout.at(data["root"], data.get("state"))


class LocalSettings(BaseSettings):
    """Where this clone keeps its state, and the ports its local platform listens on (127.0.0.1)."""

    model_config = SettingsConfigDict(env_prefix="GUESSME_", frozen=True, validate_by_name=True)

    root: Path = Field(default_factory=checkout_root)  # GUESSME_ROOT
    state: Path = Field(default_factory=lambda data: _layout(data).state)  # GUESSME_STATE
    serve_port: Port = LOCAL_PORTS["GUESSME_SERVE_PORT"]  # the game and its API (Ray Serve)
    mlflow_port: Port = LOCAL_PORTS["GUESSME_MLFLOW_PORT"]
    ray_port: Port = LOCAL_PORTS["GUESSME_RAY_PORT"]  # the Ray head's GCS
    dashboard_port: Port = Field(
        default=LOCAL_PORTS["GUESSME_RAY_DASHBOARD_PORT"],
        validation_alias=_env("GUESSME_RAY_DASHBOARD_PORT", "dashboard_port"),
    )
    airflow_port: Port = LOCAL_PORTS["GUESSME_AIRFLOW_PORT"]
    # Logical CPUs, not cores: Serve's replica (0.5) and Ray Train's two workers must fit together,
    # and on 2 cores they time-share well (training is batch work; a guess takes ~2 ms).
    ray_cpus: int = 4
    # Ray's session files: scripts/lib.sh picks a short folder (Unix socket paths are capped).
    ray_tmpdir: Path | None = Field(default=None, validation_alias=_env("RAY_TMPDIR", "ray_tmpdir"))
    airflow_home: Path = Field(
        default_factory=lambda data: _layout(data).airflow_home,
        validation_alias=_env("AIRFLOW_HOME", "airflow_home"),
    )

    @field_validator("ray_port", "dashboard_port")
    @classmethod
    def _outside_ray_worker_ports(cls, port: int) -> int:
        if port in RAY_WORKER_PORTS:
            first, last = RAY_WORKER_PORTS[0], RAY_WORKER_PORTS[-1]
            raise ValueError(
                f"{port} is in Ray's worker port range {first}-{last}: Ray would refuse to start"
            )
        return port

    @property
    def layout(self) -> Layout:
        return Layout.at(self.root, self.state)

    @property
    def logs(self) -> Path:
        return self.layout.logs

    @property
    def pids(self) -> Path:
        return self.layout.run

    @property
    def game_url(self) -> str:
        return f"http://127.0.0.1:{self.serve_port}"

    @property
    def mlflow_dir(self) -> Path:
        return self.layout.local_mlflow

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def ray_address(self) -> str:
        return f"127.0.0.1:{self.ray_port}"

    def ports(self) -> dict[str, int]:
        return {
            "game (Ray Serve)": self.serve_port,
            "MLflow": self.mlflow_port,
            "Ray head": self.ray_port,
            "Ray dashboard": self.dashboard_port,
            "Airflow": self.airflow_port,
        }
