"""The array files the stages exchange: `x` uint8 (N, 28, 28) and `y` int64 (N,).

Files are written byte-for-byte deterministically (fixed zip timestamps), so the same data always
has the same DVC hash and an unchanged stage re-run leaves its outputs identical.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

IMAGE_SHAPE = (28, 28)
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Digits:
    x: np.ndarray  # uint8 (N, 28, 28), ink 0..255
    y: np.ndarray  # int64 (N,)

    def __post_init__(self) -> None:
        if self.x.dtype != np.uint8 or self.x.ndim != 3 or self.x.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"x must be uint8 (N, 28, 28), got {self.x.dtype} {self.x.shape}")
        if self.y.shape != (len(self.x),):
            raise ValueError(f"y must have shape ({len(self.x)},), got {self.y.shape}")

    def __len__(self) -> int:
        return len(self.y)

    def images(self) -> torch.Tensor:
        """(N, 1, 28, 28) float32 in [0, 1]: the model's input."""
        # A copy: arrays that came through Ray's object store are read-only.
        return torch.tensor(self.x, dtype=torch.float32).div_(255.0).unsqueeze(1)

    def labels(self) -> torch.Tensor:
        return torch.tensor(self.y, dtype=torch.int64)

    def class_counts(self) -> dict[str, int]:
        return {str(d): int((self.y == d).sum()) for d in range(10)}


def save_digits(path: Path, digits: Digits) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in (("x", digits.x), ("y", digits.y.astype(np.int64))):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(
                zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH), buf.getvalue(), zipfile.ZIP_DEFLATED
            )
    tmp.replace(path)


def load_digits(path: Path) -> Digits:
    with np.load(path, allow_pickle=False) as npz:
        return Digits(x=npz["x"], y=npz["y"].astype(np.int64))
