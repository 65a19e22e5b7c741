"""serveConfigV2 IS apps/guessme-serve/serve-config.yaml, with each environment's model URI in it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from manifest_tools import REPO, Obj, environments, model_env_value, render, serve_config_text

pytestmark = pytest.mark.manifests

SERVE_CONFIG = REPO / "apps/guessme-serve/serve-config.yaml"


def deployment_user_config(text: str) -> dict:
    """The guessme deployment's user_config, after validating the text as a Ray Serve config."""
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(yaml.safe_load(text))
    (app,) = config.applications
    (deployment,) = app.deployments
    return dict(deployment.user_config or {})


def served_model(text: str) -> str:
    """model_uri as Ray Serve will see it; an empty model.env value renders as YAML null (no model)."""
    value = deployment_user_config(text).get("model_uri")
    return "" if value is None else str(value)


def expected_text(model_uri: str) -> str:
    """serve-config.yaml with only its last line's model URI set, as the overlay's replacement does."""
    head, sep, _ = SERVE_CONFIG.read_text().rpartition("model_uri: ")
    assert sep, "serve-config.yaml lost its `model_uri: ` line"
    return f"{head}{sep}{model_uri}"


def test_model_uri_is_the_last_and_only_one() -> None:
    text = SERVE_CONFIG.read_text()
    assert text.count("model_uri: ") == 1
    assert text.rstrip("\n").splitlines()[-1].strip() == 'model_uri: ""'


@pytest.mark.parametrize("env", environments())
def test_serve_config_is_the_file_with_the_env_model(env: str, rendered: dict[str, list[Obj]]) -> None:
    text = serve_config_text(rendered[env])
    assert text == expected_text(model_env_value(env))
    assert served_model(text) == model_env_value(env)


@pytest.mark.parametrize("env", environments())
def test_model_env_names_an_immutable_version_or_nothing(env: str) -> None:
    value = model_env_value(env)
    assert value == "" or (value.startswith("models:/guessme-cnn/") and value.rsplit("/", 1)[1].isdigit())


@pytest.mark.parametrize("env", environments())
def test_a_promotion_reaches_the_serve_config(env: str, repo_copy: Path) -> None:
    """What a promotion commit does: edit the environment's model.env; its rendered config follows,
    and no other environment's does."""
    (repo_copy / f"environments/{env}/model.env").write_text("# promoted\nMODEL_URI=models:/guessme-cnn/7\n")
    text = serve_config_text(render(repo_copy / f"environments/{env}"))
    assert served_model(text) == "models:/guessme-cnn/7"
    assert text == expected_text("models:/guessme-cnn/7")
    for other in set(environments()) - {env}:
        other_text = serve_config_text(render(repo_copy / f"environments/{other}"))
        assert served_model(other_text) != "models:/guessme-cnn/7"


def test_a_base_without_the_served_model_component_is_caught(repo_copy: Path) -> None:
    kustomization = repo_copy / "environments/base/kustomization.yaml"
    text = kustomization.read_text()
    assert "  - ../../platform/components/served-model\n" in text
    kustomization.write_text(text.replace("  - ../../platform/components/served-model\n", ""))
    (repo_copy / "environments/prod/model.env").write_text("MODEL_URI=models:/guessme-cnn/7\n")
    assert served_model(serve_config_text(render(repo_copy / "environments/prod"))) != "models:/guessme-cnn/7"


def test_an_edit_of_the_serve_config_reaches_every_environment(repo_copy: Path) -> None:
    config = repo_copy / "apps/guessme-serve/serve-config.yaml"
    config.write_text(config.read_text().replace("max_replicas: 4", "max_replicas: 9"))
    assert "max_replicas: 9" in serve_config_text(render(repo_copy / "environments/prod"))


def test_an_invalid_serve_config_is_caught(rendered: dict[str, list[Obj]]) -> None:
    from pydantic import ValidationError

    text = serve_config_text(rendered["local"]).replace("import_path:", "import_paht:")
    with pytest.raises(ValidationError):
        deployment_user_config(text)
