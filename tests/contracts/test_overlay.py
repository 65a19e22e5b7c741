"""The overlay/model.env contract: where it lives, how MODEL_URI is read and rewritten, which
environments exist (discovered from the folders), and what a branch has committed."""

import subprocess
from pathlib import Path

import pytest
import yaml

from guessme_contracts.model_uri import ModelRef
from guessme_contracts.overlay import (
    MODEL_CONFIGMAP,
    MODEL_URI_KEY,
    OverlayError,
    OverlayNotCommitted,
    committed_model_uri,
    committed_text,
    environments,
    model_env_file,
    overlay_path,
    read_model,
    with_model,
)

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_the_overlay_path_and_environment_names() -> None:
    assert overlay_path("local") == "environments/local/model.env"
    assert model_env_file(Path("/r"), "prod-2") == Path("/r/environments/prod-2/model.env")
    for bad in ("Prod", "../prod", "", "-x", "a/b", "a b"):
        with pytest.raises(OverlayError, match="lower-case"):
            overlay_path(bad)


def test_environments_are_the_folders_that_hold_a_model_env(tmp_path: Path) -> None:
    assert environments(tmp_path) == []
    for env in ("prod", "local", "staging"):
        (tmp_path / "environments" / env).mkdir(parents=True)
        (tmp_path / "environments" / env / "model.env").write_text("MODEL_URI=\n")
    (tmp_path / "environments" / "base").mkdir()  # shared resources, no model.env: not an environment
    (tmp_path / "environments" / "base" / "kustomization.yaml").write_text("resources: []\n")
    (tmp_path / "environments" / "notes.md").write_text("a file, not a folder\n")
    assert environments(tmp_path) == ["local", "prod", "staging"]
    (tmp_path / "environments" / "Bad_Name").mkdir()
    (tmp_path / "environments" / "Bad_Name" / "model.env").write_text("MODEL_URI=\n")
    with pytest.raises(OverlayError, match="Bad_Name"):
        environments(tmp_path)


def test_this_repository_has_environments_and_each_model_env_reads() -> None:
    envs = environments(REPO)
    assert "local" in envs
    for env in envs:
        read_model(model_env_file(REPO, env).read_text())  # raises on a malformed file


TEXT = "# comment\r\n\r\nMODEL_URI=models:/guessme-cnn/1\r\n# tail\n"


def test_read_and_rewrite_keep_everything_but_the_uri() -> None:
    assert read_model(TEXT) == ModelRef("guessme-cnn", 1)
    assert read_model("# nothing yet\nMODEL_URI=\n") is None
    assert read_model("  MODEL_URI=models:/x/2") == ModelRef("x", 2)  # Kustomize drops leading blanks
    new = with_model(TEXT, ModelRef("guessme-cnn", 12))
    assert new == TEXT.replace("/1\r\n", "/12\r\n")
    assert with_model("MODEL_URI=", ModelRef("m", 3)) == "MODEL_URI=models:/m/3\n"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("MODEL_URI=models:/a/1\nMODEL_URI=models:/a/2\n", "exactly one"),
        ("# MODEL_URI=models:/a/1\n", "exactly one"),
        ("", "exactly one"),
        ("MODEL_URI=models:/a@champion\n", "alias"),
        ("MODEL_URI= models:/a/1\n", "whitespace"),  # Kustomize would pass the space on to the server
        ("MODEL_URI=models:/a/1 # promoted\n", "number"),
        ("MODEL_URI=  \n", "whitespace"),
        ('MODEL_URI="models:/a/1"\n', "numeric version"),  # env files keep quotes verbatim
    ],
)
def test_a_malformed_model_env_is_refused(text: str, why: str) -> None:
    with pytest.raises(OverlayError, match=r"model\.env") as err:
        read_model(text)
    assert why in str(err.value)


def test_a_rewrite_refuses_a_file_it_cannot_read() -> None:
    with pytest.raises(OverlayError, match="exactly one"):
        with_model("MODEL_URI=\nMODEL_URI=\n", ModelRef("m", 1))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_committed_model_reads_the_branch_head_never_the_working_tree(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet", "-b", "main")
    assert committed_model_uri(tmp_path, "local") is None  # no commit yet
    model_env = tmp_path / overlay_path("local")
    model_env.parent.mkdir(parents=True)
    model_env.write_text("MODEL_URI=\n")
    git(tmp_path, "add", ".")
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    git(tmp_path, *ident, "commit", "--quiet", "-m", "empty overlay")
    assert committed_model_uri(tmp_path, "local") is None  # nothing promoted yet
    git(tmp_path, "checkout", "--quiet", "-b", "other")
    model_env.write_text("MODEL_URI=models:/guessme-cnn/4\n")
    git(tmp_path, *ident, "commit", "--quiet", "-am", "promote")
    model_env.write_text("MODEL_URI=models:/guessme-cnn/9\n")  # uncommitted: never read
    assert committed_model_uri(tmp_path, "local") == "models:/guessme-cnn/4"
    assert committed_model_uri(tmp_path, "local", branch="main") is None
    assert committed_model_uri(tmp_path, "prod") is None
    with pytest.raises(OverlayNotCommitted, match=r"environments/prod/model\.env"):
        committed_text(tmp_path, "prod")


def test_the_served_model_component_reads_the_key_each_environment_generates() -> None:
    """Drift: model.env's key and ConfigMap name here vs the Kustomize component and the overlays that
    generate the ConfigMap from model.env (kustomize `replacements` source, api/types/replacement.go)."""
    component = yaml.safe_load((REPO / "platform/components/served-model/kustomization.yaml").read_text())
    sources = [r["source"] for r in component["replacements"]]
    assert {"kind": "ConfigMap", "name": MODEL_CONFIGMAP, "fieldPath": f"data.{MODEL_URI_KEY}"} in sources
    for env in environments(REPO):
        kustomization = yaml.safe_load((REPO / "environments" / env / "kustomization.yaml").read_text())
        generated = [g for g in kustomization.get("configMapGenerator", []) if g["name"] == MODEL_CONFIGMAP]
        assert [g.get("envs") for g in generated] == [["model.env"]], env
