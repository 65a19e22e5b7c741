"""Pytest plugin: the real Guessme serve app on a private Ray head (session-scoped, shared).

`serve_app` starts `ray start --head` on free ports, applies apps/guessme-serve/serve-config.yaml
with Ray Serve's declarative API (the trained model's URI in user_config, as an environment's
overlay would), and serves the built front end (apps/frontend/dist) at `/` when it exists.
`serve_app.deploy(uri)` changes the user_config only: an in-place `reconfigure()`.
`mnist_test_digits`: MNIST test digits to prove the served model answers right.
Teardown stops this head's process group by PID (never `ray stop`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest


@dataclass
class ServeApp:
    url: str  # base URL of the app (REST, /docs, the game at /)
    ws_url: str
    dashboard_url: str
    player_data: Path  # the folder of the round shards
    http_port: int
    base_config: dict[str, Any] = field(repr=False)
    model_uri: str = ""

    def deploy(
        self, model_uri: str, timeout: float = 180.0, wait_model: bool = True, **settings: Any
    ) -> None:
        """Apply the serve config with this model_uri (and user_config settings); wait until served."""
        from guessme_local.ray_head import deploy, wait_until_running, with_model_uri

        config = with_model_uri(self.base_config, model_uri)
        dep = config["applications"][0]["deployments"][0]
        dep["user_config"] = {**dep["user_config"], **settings, "model_uri": model_uri}
        deploy(config, self.dashboard_url, http_port=self.http_port)
        wait_until_running(self.dashboard_url, user_config=dep["user_config"], timeout=timeout)
        if wait_model:
            self.wait_for_model(model_uri, timeout)
        self.model_uri = model_uri

    def wait_for_model(self, model_uri: str, timeout: float = 120.0) -> dict[str, Any]:
        """Until /model reports `model_uri` as served (reconfigure loads it in the background)."""
        import time

        deadline = time.monotonic() + timeout
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                info = httpx.get(f"{self.url}/model", timeout=10).json()
                if info.get("model_uri") == model_uri and (info.get("model_version") or not model_uri):
                    return info
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{model_uri} not served within {timeout:.0f} s: {info}")


@pytest.fixture(scope="session")
def mnist_test_digits(trained_model: Any) -> tuple[Any, Any]:
    """The first 40 digits of the split the trained model was scored on, as ink in [0, 1]."""
    import numpy as np

    with np.load(trained_model.test_data, allow_pickle=False) as test:
        return test["x"][:40].astype(np.float32) / 255.0, test["y"][:40]


def with_test_targets(config: dict[str, Any]) -> dict[str, Any]:
    """The test-only setting behind the game's `?targets=`: the tests choose the digits to draw."""
    config["applications"][0]["deployments"][0]["user_config"]["test_client_targets"] = True
    return config


@pytest.fixture(scope="session")
def serve_app(trained_model: Any, mlflow_server: str, run_dir: Path) -> Iterator[ServeApp]:
    from guessme_local.procs import free_port
    from guessme_local.ray_head import load_serve_config, start_ray_head, stop_ray_head

    player_data = run_dir / "player"  # the shards' folder
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server,
        "GUESSME_PLAYER_DATA": str(player_data),
    }
    head = start_ray_head(run_dir / "ray", gcs_port=free_port(), dashboard_port=free_port(), env=env)
    try:
        port = free_port()
        app = ServeApp(
            url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}/ws",
            dashboard_url=head.dashboard_url,
            player_data=player_data,
            http_port=port,
            base_config=with_test_targets(load_serve_config()),
        )
        app.deploy(trained_model.uri)
        yield app
    finally:
        stop_ray_head(head)
