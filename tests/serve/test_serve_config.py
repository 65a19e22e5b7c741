"""The one serve config: valid for Ray Serve, and shaped for the environments' model_uri substitution."""

from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from guessme_contracts.probes import threshold
from guessme_serve.service import ServiceSettings
from guessme_serve.ws_connections import ConnectionSettings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "apps" / "guessme-serve" / "serve-config.yaml"


def test_is_a_valid_serve_deploy_config() -> None:
    schema = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    (app,) = schema.applications
    assert app.import_path == "guessme_serve.app:app"
    (dep,) = app.deployments
    assert dep.name == "GuessmeServe"
    assert dep.user_config is not None
    assert dep.user_config["model_uri"] == ""
    assert dep.autoscaling_config is not None  # replicas come from the file


def test_model_uri_is_the_last_line_and_appears_once() -> None:
    lines = CONFIG.read_text().rstrip("\n").splitlines()
    assert sum("model_uri:" in line for line in lines) == 1
    assert lines[-1].strip() == 'model_uri: ""'
    # The kustomize replacement splits on "model_uri: " and replaces what follows.
    assert lines[-1].split("model_uri: ")[1] == '""'


def test_substituted_uri_is_still_valid() -> None:
    text = CONFIG.read_text().replace('model_uri: ""', "model_uri: models:/guessme-cnn/7")
    schema = ServeDeploySchema.model_validate(yaml.safe_load(text))
    user_config = schema.applications[0].deployments[0].user_config
    assert user_config is not None
    assert user_config["model_uri"] == "models:/guessme-cnn/7"


def _changes_a_setting(key: str, value: object) -> bool:
    """Whether `key: value` in user_config makes the app behave differently from its defaults."""
    service = ServiceSettings.from_user_config({key: value}, environ={})
    connection = ConnectionSettings.from_user_config({key: value}, environ={})
    return service != ServiceSettings.from_user_config(
        {}, environ={}
    ) or connection != ConnectionSettings.from_user_config({}, environ={})


def test_user_config_sets_only_known_settings_that_differ_from_the_defaults() -> None:
    """The app's settings classes own the defaults; the serve config (also the RayService's
    serveConfigV2) carries overrides only, so a default is never written twice."""
    schema = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    user_config = dict(schema.applications[0].deployments[0].user_config or {})
    user_config.pop("model_uri")
    pointless = sorted(key for key, value in user_config.items() if not _changes_a_setting(key, value))
    assert not pointless, f"{pointless}: unknown settings, or the app's own defaults restated (drop them)"


def test_the_probe_gate_threshold_is_params_yaml_s() -> None:
    """params.yaml promote.verify_min_accuracy owns the threshold; the replicas get it through
    user_config (the gate before a swap, guessme_serve.model_holder), so the two must agree."""
    schema = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    settings = ServiceSettings.from_user_config(schema.applications[0].deployments[0].user_config or {}, {})
    assert settings.probe_min_accuracy == threshold((REPO / "params.yaml").read_text()), (
        "serve-config.yaml user_config probe_min_accuracy must equal params.yaml promote.verify_min_accuracy"
    )
