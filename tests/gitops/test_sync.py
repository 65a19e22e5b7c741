"""The local GitOps sync: renders what is committed (never the working tree) and applies each head once."""

from pathlib import Path
from typing import Any

import pytest
from support.repo_snapshot import OVERLAY, TEMPLATE_URI, commit_model_uri, git, set_model_uri

from guessme_local.sync import Reconciler, RenderError, model_uri_of, render_commit

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.applied: list[str | None] = []
        self.fail = fail

    def __call__(self, config: dict[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("Serve is down")
        self.applied.append(model_uri_of(config))


def test_render_is_a_valid_serve_config_naming_the_committed_model(repo: Path) -> None:
    from ray.serve.schema import ServeDeploySchema

    commit = commit_model_uri(repo, "models:/guessme-cnn/7")
    rendered = render_commit(repo, commit, "local")
    assert rendered.model_uri == "models:/guessme-cnn/7"
    ServeDeploySchema.model_validate(rendered.serve_config)


def test_uncommitted_edits_are_not_deployed(repo: Path) -> None:
    set_model_uri(repo, "models:/guessme-cnn/99")  # a developer's edit, not committed
    rendered = render_commit(repo, git(repo, "rev-parse", "HEAD"), "local")
    assert rendered.model_uri == TEMPLATE_URI


def test_each_new_head_is_applied_once(repo: Path) -> None:
    apply = Recorder()
    sync = Reconciler(repo, "local", "main", apply)
    assert sync.step() == "applied"
    assert sync.step() is None  # same head: nothing to do
    commit_model_uri(repo, "models:/guessme-cnn/2")
    assert sync.step() == "applied"
    (repo / "README.md").write_text("docs only\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "--quiet", "-m", "docs")
    assert sync.step() == "unchanged"  # the render did not change: Serve is not touched
    git(repo, "revert", "--no-edit", "HEAD~1")
    assert sync.step() == "applied"
    assert apply.applied == [TEMPLATE_URI, "models:/guessme-cnn/2", TEMPLATE_URI]


def test_a_bad_commit_keeps_the_last_good_config_and_is_retried(repo: Path) -> None:
    apply = Recorder()
    sync = Reconciler(repo, "local", "main", apply, retry_s=0.0)
    assert sync.step() == "applied"
    good = sync.applied_commit
    commit_model_uri(repo, "models:/guessme-cnn@champion")  # an alias: never deployed
    assert sync.step() == "failed"
    assert sync.applied_commit == good
    git(repo, "rm", "--quiet", "environments/local/kustomization.yaml")
    git(repo, "commit", "--quiet", "-m", "broken overlay")
    assert sync.step() == "failed"
    git(repo, "revert", "--no-edit", "HEAD")
    git(repo, "revert", "--no-edit", "HEAD~2")
    assert sync.step() == "unchanged"  # back to the config already applied
    assert apply.applied == [TEMPLATE_URI]


def test_apply_failure_is_retried_after_the_back_off(repo: Path) -> None:
    apply = Recorder(fail=True)
    sync = Reconciler(repo, "local", "main", apply, retry_s=3600)
    assert sync.step() == "failed"
    assert sync.step() is None  # backing off
    sync.retry_s = 0.0
    apply.fail = False
    assert sync.step() == "applied"
    assert apply.applied == [TEMPLATE_URI]


def test_render_errors_name_the_problem(repo: Path) -> None:
    git(repo, "rm", "--quiet", OVERLAY)
    git(repo, "commit", "--quiet", "-m", "no model file")
    with pytest.raises(RenderError, match="kustomize"):
        render_commit(repo, git(repo, "rev-parse", "HEAD"), "local")
