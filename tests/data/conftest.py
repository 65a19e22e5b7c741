"""The data tier's inputs (Made-With-ML's `--dataset-loc`, here two folders).

`--prepared-dir`: the prepared splits (train/val/test.npz, and player.npz when the `player` stage ran).
Default: data/prepared when `dvc repro`/`dvc pull` has filled it, else the fetch + prepare stages'
output for the committed params.yaml (the test cache, built by the same code the stages run).
`--player-dir`: the players' data folder (round shards, tombstones). Default: data/player.
The DAG runs this tier on its scratch checkout before training (guessme_pipeline.tasks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SPLITS = ("train", "val", "test")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--prepared-dir", type=Path, default=None, help="folder of train/val/test(.npz)")
    parser.addoption("--player-dir", type=Path, default=REPO / "data" / "player", help="players' data folder")


@pytest.fixture(scope="session")
def prepared_dir(request: pytest.FixtureRequest) -> Path:
    explicit = request.config.getoption("--prepared-dir")
    if explicit is not None:
        return Path(explicit)
    local = REPO / "data" / "prepared"
    if all((local / f"{name}.npz").is_file() for name in SPLITS):
        return local
    from support.model_fixtures import prepared_data

    from guessme_train.params import load_params

    return prepared_data(load_params(REPO / "params.yaml"))["train"].parent


@pytest.fixture(scope="session")
def splits(prepared_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for name in SPLITS:
        with np.load(prepared_dir / f"{name}.npz", allow_pickle=False) as data:
            out[name] = (data["x"], data["y"])
    return out


@pytest.fixture(scope="session")
def player_dir(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.getoption("--player-dir"))
