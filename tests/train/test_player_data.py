"""The players' rounds as training data: DVC stage `player` and `prepare` with data.include_player."""

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from support.digit_strokes import draw  # hand-made player-like strokes, shared with the core tests

from guessme_core.player_files import TOMBSTONES
from guessme_train.datasets import Digits, load_digits, save_digits
from guessme_train.params import DataParams, load_params
from guessme_train.player import main as player_main
from guessme_train.player_rounds import LabelRules, load_player_digits
from guessme_train.prepare import main as prepare_main
from guessme_train.provenance import file_md5
from guessme_train.splits import add_player_digits

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO / "params.yaml"
RULES = LabelRules.from_params_file(PARAMS_FILE)  # the repository's label rules
DATA = load_params(PARAMS_FILE).data


def rules(**changes: Any) -> LabelRules:
    return dataclasses.replace(RULES, **changes)


def with_player(cap: float) -> DataParams:
    """The repository's data params with player digits in, capped at `cap` per MNIST digit."""
    return dataclasses.replace(DATA, include_player=True, player_max_fraction=cap)


def round_row(digit: int, round_id: str, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": round_id,
        "created_at": "2026-11-26T00:00:00+00:00",
        "strokes": draw(digit),
        "width": 280,
        "height": 280,
        "target": digit,
        "guess": digit,
        "probabilities": [0.91 if d == digit else 0.01 for d in range(10)],
        "ticket": f"nonce-{round_id}",
        "player": "p" * 32,
        "model_uri": "models:/guessme-cnn/1",
        "model_version": "1",
        "won": True,
    }
    return {**row, **changes}


def write_rounds(path: Path, rows: list[object], tail: str = "") -> Path:
    """One shard (or the legacy file) of `rows`; returns its folder, what the stage reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("".join(line + "\n" for line in lines) + tail)
    return path.parent


def test_a_drawn_one_becomes_an_inked_labelled_mnist_style_image(tmp_path: Path) -> None:
    from guessme_core import strokes_to_image

    rounds = write_rounds(
        tmp_path / "player" / "rounds-20261126-0001.jsonl", [round_row(1, "a"), round_row(7, "b")]
    )
    digits, report = load_player_digits(rounds, RULES)
    assert (report.rows, report.used, sum(report.skipped.values())) == (2, 2, 0)
    assert digits.x.dtype == np.uint8
    assert digits.x.shape == (2, 28, 28)
    assert digits.y.tolist() == [1, 7]
    one = digits.x[0]
    assert one.max() == 255
    assert (one > 0).sum() > 20
    rows, cols = np.nonzero(one)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert height == 20
    assert width < 12
    # Exactly the serving preprocessing, only stored as uint8.
    shared = strokes_to_image(draw(1), 280, 280)
    assert np.abs(one.astype(np.float32) / 255 - shared).max() <= 0.5 / 255 + 1e-6


def test_malformed_rows_are_skipped_and_counted_by_reason(tmp_path: Path) -> None:
    rows: list[object] = [
        round_row(3, "ok-1"),
        "{not json",
        "[1, 2]",
        round_row(3, "t1", target=12),
        round_row(3, "t2", target=True),
        round_row(3, "t3", target="3"),
        {k: v for k, v in round_row(3, "s1").items() if k != "strokes"},
        round_row(3, "s2", strokes=[]),
        round_row(3, "s3", strokes=[[[500.0], [10.0]]]),  # off the 280 px canvas
        round_row(3, "ok-1"),  # the same round sent twice counts once
        "",
        round_row(5, "ok-2"),
    ]
    rows.append(round_row(5, "p1", probabilities="high"))
    rounds = write_rounds(tmp_path / "rounds-20261126-0001.jsonl", rows, tail='{"id": "half-writ')
    digits, report = load_player_digits(rounds, RULES)
    assert digits.y.tolist() == [3, 5]
    assert report.duplicates == 1
    assert report.incomplete == 1
    assert dict(report.skipped) == {
        "not_json": 1,
        "not_an_object": 1,
        "bad_target": 3,
        "no_drawing": 1,
        "bad_drawing": 2,
        "bad_probabilities": 1,
    }
    assert report.rows == 12


def test_every_shard_is_read_and_each_label_rule_counts_what_it_dropped(tmp_path: Path) -> None:
    folder = tmp_path / "player"
    write_rounds(folder / "rounds.jsonl", [round_row(1, "legacy", ticket=None)])  # before dealt rounds
    write_rounds(
        folder / "rounds-20261126-0001.jsonl", [round_row(2, "a"), round_row(3, "gone", player="w" * 32)]
    )
    second = [round_row(4, "b"), round_row(5, "c", probabilities=[0.9 if d == 6 else 0.0 for d in range(10)])]
    write_rounds(folder / "rounds-20261127-0001.jsonl", second, tail='{"half')
    (folder / TOMBSTONES).write_text(json.dumps({"player": "w" * 32}) + "\n{damaged\n")
    digits, report = load_player_digits(folder, RULES)
    assert digits.y.tolist() == [2, 4]
    assert dict(report.dropped) == {"no_ticket": 1, "withdrawn": 1, "not_in_top_k": 1}
    assert report.incomplete == 1
    # A round whose target is the model's second choice is kept with top_k 2, dropped with top_k 1.
    runner_up = [0.6 if d == 8 else 0.3 if d == 5 else 0.1 / 8 for d in range(10)]
    only = write_rounds(
        tmp_path / "k" / "rounds-20261126-0001.jsonl", [round_row(5, "r", probabilities=runner_up)]
    )
    assert load_player_digits(only, rules(top_k=2))[0].y.tolist() == [5]
    assert load_player_digits(only, rules(top_k=1))[0].y.tolist() == []
    assert load_player_digits(only, rules(top_k=0))[0].y.tolist() == [5]
    assert load_player_digits(only, rules(top_k=2, min_probability=0.4))[1].dropped == {"unlikely": 1}


def test_label_rules_come_from_params_and_refuse_typos(tmp_path: Path) -> None:
    assert RULES.top_k >= 1
    bad = tmp_path / "params.yaml"
    bad.write_text("player:\n  top_kk: 3\n  top_k: 2\n  min_probability: 0.1\n  require_ticket: true\n")
    with pytest.raises(ValueError, match=f"^{bad}: player: unknown key\\(s\\): top_kk$"):
        LabelRules.from_params_file(bad)
    bad.write_text("player:\n  top_k: 11\n  min_probability: 0.1\n  require_ticket: true\n")
    with pytest.raises(ValueError, match="top_k must be an integer from 0 to 10"):
        LabelRules.from_params_file(bad)


@pytest.mark.parametrize("key", ["top_k", "min_probability", "require_ticket"])
def test_a_label_rule_missing_from_params_is_an_error_naming_it(tmp_path: Path, key: str) -> None:
    """No default: a rule deleted from params.yaml fails like a misspelt one, naming key and file."""
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    del raw["player"][key]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=f"^{path}: player: missing key\\(s\\): {key}$"):
        LabelRules.from_params_file(path)
    with pytest.raises(TypeError):  # nor can code build the rules with one left out
        LabelRules(top_k=2)  # type: ignore[call-arg]


@pytest.mark.parametrize("content", [None, "", "\n\n"])
def test_missing_or_empty_rounds_make_an_empty_set_and_report(tmp_path: Path, content: str | None) -> None:
    rounds = tmp_path / "player" / "rounds-20261126-0001.jsonl"
    if content is not None:
        rounds.parent.mkdir()
        rounds.write_text(content)
    out, report = tmp_path / "player.npz", tmp_path / "player.json"
    player_main(
        [
            "--params",
            str(PARAMS_FILE),
            "--player-dir",
            str(rounds.parent),
            "--out",
            str(out),
            "--report",
            str(report),
        ]
    )
    digits = load_digits(out)
    assert digits.x.shape == (0, 28, 28)
    assert digits.x.dtype == np.uint8
    assert digits.y.dtype == np.int64
    summary = json.loads(report.read_text())
    assert (summary["rows"], summary["used"], summary["skipped"], summary["dropped"]) == (0, 0, 0, 0)
    assert summary["dropped_by_rule"] == {"withdrawn": 0, "no_ticket": 0, "not_in_top_k": 0, "unlikely": 0}
    assert sum(summary["class_counts"].values()) == 0


def test_player_stage_output_is_byte_deterministic(tmp_path: Path) -> None:
    rounds = write_rounds(
        tmp_path / "player" / "rounds-20261126-0001.jsonl", [round_row(d, str(d)) for d in range(10)]
    )
    for name in ("a", "b"):
        player_main(
            [
                "--params",
                str(PARAMS_FILE),
                "--player-dir",
                str(rounds),
                "--out",
                str(tmp_path / f"{name}.npz"),
                "--report",
                str(tmp_path / f"{name}.json"),
            ]
        )
    assert file_md5(tmp_path / "a.npz") == file_md5(tmp_path / "b.npz")
    assert load_digits(tmp_path / "a.npz").class_counts() == dict.fromkeys(map(str, range(10)), 1)


# --- prepare: player digits join the train split only --------------------------------------------


def synthetic_raw(per_class: int = 30) -> Digits:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), per_class).astype(np.int64)
    return Digits(x=rng.integers(0, 200, (len(y), 28, 28), dtype=np.uint8), y=y)


def player_digits(n: int) -> Digits:
    # Pixel value 255 everywhere: no synthetic MNIST digit (values < 200) looks like one.
    return Digits(x=np.full((n, 28, 28), 255, np.uint8), y=(np.arange(n) % 10).astype(np.int64))


def run_prepare(tmp_path: Path, name: str, include_player: bool, player: Digits) -> Path:
    base = tmp_path / name
    base.mkdir()
    save_digits(base / "raw.npz", synthetic_raw())
    save_digits(base / "player.npz", player)
    params = yaml.safe_load(PARAMS_FILE.read_text())
    params["data"]["include_player"] = include_player
    params["prepare"].update(seed=5, limit=0)
    (base / "params.yaml").write_text(yaml.safe_dump(params))
    prepare_main(
        [
            "--params",
            str(base / "params.yaml"),
            "--raw",
            str(base / "raw.npz"),
            "--player",
            str(base / "player.npz"),
            "--out-dir",
            str(base / "prepared"),
            "--report",
            str(base / "data.json"),
        ]
    )
    return base


def is_player(digits: Digits) -> np.ndarray:
    return (digits.x == 255).all(axis=(1, 2))


def test_prepare_puts_player_digits_in_train_only_deterministically(tmp_path: Path) -> None:
    off = run_prepare(tmp_path, "off", False, player_digits(20))
    on = run_prepare(tmp_path, "on", True, player_digits(20))
    again = run_prepare(tmp_path, "again", True, player_digits(20))
    for split in ("val", "test"):  # the held-out sets do not change
        assert file_md5(on / "prepared" / f"{split}.npz") == file_md5(off / "prepared" / f"{split}.npz")
        assert not is_player(load_digits(on / "prepared" / f"{split}.npz")).any()
    train_off, train_on = (
        load_digits(off / "prepared" / "train.npz"),
        load_digits(on / "prepared" / "train.npz"),
    )
    assert len(train_on) == len(train_off) + 20
    assert is_player(train_on).sum() == 20
    assert sorted(train_on.y[is_player(train_on)].tolist()) == sorted(player_digits(20).y.tolist())
    # The MNIST part is the same set of digits.
    mnist_on = train_on.x[~is_player(train_on)].reshape(len(train_off), -1)
    assert sorted(map(bytes, mnist_on)) == sorted(map(bytes, train_off.x.reshape(len(train_off), -1)))
    assert file_md5(on / "prepared" / "train.npz") == file_md5(again / "prepared" / "train.npz")
    report = json.loads((on / "data.json").read_text())
    assert report["train"]["player"] == {"available": 20, "added": 20}
    assert "player" not in json.loads((off / "data.json").read_text())["train"]


def test_without_player_digits_train_is_byte_identical(tmp_path: Path) -> None:
    off = run_prepare(tmp_path, "off", False, player_digits(20))
    empty = run_prepare(tmp_path, "empty", True, player_digits(0))
    for split in ("train", "val", "test"):
        assert file_md5(empty / "prepared" / f"{split}.npz") == file_md5(off / "prepared" / f"{split}.npz")


def test_player_share_is_capped_by_a_seeded_choice() -> None:
    train, player = synthetic_raw(per_class=10), player_digits(500)
    capped = add_player_digits(train, player, with_player(0.1), 1)
    assert is_player(capped).sum() == 10
    assert len(capped) == 110
    same = add_player_digits(train, player, with_player(0.1), 1)
    np.testing.assert_array_equal(capped.y, same.y)
    uncapped = add_player_digits(train, player, with_player(0), 1)
    assert is_player(uncapped).sum() == 500
    with pytest.raises(ValueError, match="player_max_fraction"):
        add_player_digits(train, player, with_player(-1), 1)


def test_repo_params_keep_player_data_out_by_default() -> None:
    data = load_params(PARAMS_FILE).data
    assert data.include_player is False
    assert 0 < data.player_max_fraction <= 1


def test_the_pipeline_snapshots_the_folder_and_evaluates_what_the_stage_would_keep(tmp_path: Path) -> None:
    from guessme_pipeline.compare import load_player_rounds
    from guessme_pipeline.tasks import snapshot_player_data

    source = tmp_path / "player"
    assert snapshot_player_data(source, tmp_path / "none") is None  # nobody has played yet
    write_rounds(
        source / "rounds-20261126-0001.jsonl", [round_row(2, "a"), round_row(3, "b", player="w" * 32)]
    )
    write_rounds(source / "rounds-20261127-0001.jsonl", [round_row(4, "c"), round_row(5, "d", ticket=None)])
    (source / TOMBSTONES).write_text(json.dumps({"player": "w" * 32}) + "\n")
    taken = snapshot_player_data(source, tmp_path / "snap")
    assert taken is not None
    assert taken["player_rounds"] == 5
    write_rounds(source / "rounds-20261127-0001.jsonl", [round_row(6, "late")])  # the game goes on writing
    digits, left_out = load_player_rounds(Path(taken["player_file"]))
    assert digits.y.tolist() == [2, 4]  # the fixed copy, less the withdrawn player and the unticketed round
    assert left_out == 2
    assert digits.images().shape == (2, 1, 28, 28)
    assert float(digits.images().max()) == 1.0


def test_the_comparison_reads_rounds_as_the_player_stage_does(tmp_path: Path) -> None:
    """One reader for the players' rounds: a resent round counts once, a damaged line and a half-written
    last line are left out, as in the `player` stage (no rank rule: that is the comparison's own)."""
    from guessme_pipeline.compare import COMPARISON_RULES, load_player_rounds

    low = [0.9 if d == 1 else 0.01 for d in range(10)]  # the serving model did not rank 7 high
    rows = [round_row(2, "a"), round_row(2, "a"), "{damaged", round_row(7, "b", probabilities=low)]
    folder = write_rounds(tmp_path / "p" / "rounds-20261126-0001.jsonl", rows, tail='{"half')
    digits, left_out = load_player_rounds(folder)
    assert digits.y.tolist() == [2, 7]
    assert left_out == 1  # the damaged line
    stage_digits, _ = load_player_digits(folder, COMPARISON_RULES)
    np.testing.assert_array_equal(digits.x, stage_digits.x)


def test_the_comparison_scores_both_model_kinds_with_the_training_predictor(tmp_path: Path) -> None:
    """The candidate (a checkpoint) and a registered pt2 model (torch.export: no eval()) are scored by
    guessme_train.loop.predict, the held-out report's predictor, so the numbers agree with it."""
    import torch

    from guessme_pipeline import compare
    from guessme_train.checkpoint import load_model, save_model
    from guessme_train.loop import build_model
    from guessme_train.metrics_report import held_out_report

    torch.manual_seed(0)
    params = load_params(PARAMS_FILE).replace(model={"width": 4})
    save_model(tmp_path / "model.pt", build_model(params.model), params.model)
    test = synthetic_raw(per_class=3)
    save_digits(tmp_path / "test.npz", test)
    report = compare.evaluate(tmp_path / "model.pt", tmp_path / "test.npz", None, None)
    candidate, _ = load_model(tmp_path / "model.pt")
    expected = held_out_report(candidate, test).accuracy
    counts = {"test_count": 30, "player_count": 0}
    assert report["candidate"] == {"test_accuracy": pytest.approx(expected), **counts}
    batch = {0: torch.export.Dim("batch")}  # as the registered model's signature makes it (mlflow_model)
    exported = torch.export.export(candidate, (test.images()[:2],), dynamic_shapes=(batch,)).module()
    with pytest.raises(NotImplementedError):
        exported.eval()  # why predict leaves an exported model's mode alone
    assert compare.accuracy(exported, test) == pytest.approx(expected)
