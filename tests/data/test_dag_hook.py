"""The DAG's data task runs this tier on its checkout, and a failing expectation fails the task."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.data

REPO = Path(__file__).resolve().parents[2]


def fake_checkout(tmp_path: Path, prepared: Path) -> Path:
    """What the DAG's scratch checkout holds after `dvc repro prepare`: the code and tests (linked from
    this repo) and a prepared data version."""
    work = tmp_path / "checkout"
    work.mkdir()
    for name in ("tests", "libs", "apps", "pyproject.toml", "dvc.yaml"):
        (work / name).symlink_to(REPO / name)
    shutil.copytree(prepared, work / "data" / "prepared")
    (work / "data" / "player").mkdir()
    return work


def test_a_bad_data_version_fails_the_data_task(tmp_path: Path) -> None:
    from support.model_fixtures import prepared_data

    from guessme_pipeline.ml import StepFailed
    from guessme_pipeline.settings import RunSettings
    from guessme_pipeline.tasks import data_tests
    from guessme_train.params import load_params

    os.environ.setdefault("ML_PYTHON", str(REPO / ".guessme" / "venvs" / "ml" / "bin" / "python"))
    good = prepared_data(load_params(REPO / "params.yaml"))["train"].parent
    work = fake_checkout(tmp_path, good)
    settings = RunSettings(REPO, "local", None, False, False, False, tmp_path / "run", tmp_path / "state")
    data_tests(settings, work)  # the committed data version passes

    with np.load(work / "data" / "prepared" / "test.npz") as test, np.load(good / "train.npz") as train:
        leaked = {
            "x": np.concatenate([train["x"], test["x"][:3]]),
            "y": np.concatenate([train["y"], test["y"][:3]]),
        }
    np.savez(work / "data" / "prepared" / "train.npz", **leaked)  # three test digits leak into train
    with pytest.raises(StepFailed, match="share 3 identical digits"):
        data_tests(settings, work)
