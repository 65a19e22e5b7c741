"""The promotion gate's thresholds (guessme_pipeline.gate.GateParams) come from params.yaml only: a
missing key fails exactly like an unknown one, naming the key and the file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from guessme_pipeline.gate import GateParams, decide

pytestmark = pytest.mark.unit
PARAMS_FILE = Path(__file__).resolve().parents[2] / "params.yaml"


def params_with(tmp_path: Path, **changes: object) -> Path:
    """The repository's params.yaml with `promote:` keys changed (None: deleted)."""
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    for key, value in changes.items():
        if value is None:
            del raw["promote"][key]
        else:
            raw["promote"][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_repositorys_thresholds_load() -> None:
    gate = GateParams.from_params_file(PARAMS_FILE)
    assert 0 < gate.min_accuracy < 1
    assert gate.min_improvement >= 0
    assert gate.max_player_drop >= 0


@pytest.mark.parametrize("key", [f.name for f in dataclasses.fields(GateParams)])
def test_a_missing_threshold_is_an_error_naming_it_and_the_file(tmp_path: Path, key: str) -> None:
    path = params_with(tmp_path, **{key: None})
    with pytest.raises(ValueError, match=rf"^{path}: promote: missing key\(s\): {key}$"):
        GateParams.from_params_file(path)


def test_an_unknown_threshold_is_an_error_naming_it_and_the_file(tmp_path: Path) -> None:
    path = params_with(tmp_path, min_accuracyy=0.6)
    with pytest.raises(ValueError, match=rf"^{path}: promote: unknown key\(s\): min_accuracyy$"):
        GateParams.from_params_file(path)


def test_no_promote_section_or_no_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 1\n")
    with pytest.raises(ValueError, match=rf"^{path}: promote must be a mapping$"):
        GateParams.from_params_file(path)
    with pytest.raises(FileNotFoundError):
        GateParams.from_params_file(tmp_path / "absent.yaml")


def test_the_gate_uses_the_files_values(tmp_path: Path) -> None:
    gate = GateParams.from_params_file(params_with(tmp_path, min_improvement=0.05, min_accuracy=0.5))
    assert not decide({"test_accuracy": 0.94}, {"test_accuracy": 0.9}, gate).promote
    assert decide({"test_accuracy": 0.96}, {"test_accuracy": 0.9}, gate).promote
