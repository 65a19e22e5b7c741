"""The NumPy antialiased resize (guessme_core.resize) against the torch kernel it replaces.

`F.interpolate(mode="bilinear", antialias=True)` is torch's `_upsample_bilinear2d_aa`; torch picks its
CPU build at run time. Its portable build (ATEN_CPU_CAPABILITY=default) computes exactly what the C++
source says, and the NumPy resize must equal it bit for bit. The AVX2/AVX512 builds (what torch runs
here by default) let the compiler fuse some multiply-adds (FMA), so some pixels move by an ulp or two:
those are held to MAX_DRIFT, for the resize and for the final 28x28 images alike.
"""

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from support.digit_strokes import draw, variations

from guessme_contracts.probes import packaged_probes
from guessme_core import pixels_to_image, preprocessing, strokes_to_image
from guessme_core.preprocessing import BOX, boxed_size
from guessme_core.resize import resize_bilinear_antialias

pytestmark = pytest.mark.unit

# A few float32 ulps of a [0, 1] pixel (one ulp just under 1.0 is 6e-8): FMA's doing, never a real change.
MAX_DRIFT = 2e-7
MAX_CROP = 28  # the longest ink crop: a 28x28 pixel image (a rasterised drawing is 22x22)

Case = tuple[np.ndarray, int, int]  # crop, output height, output width


def torch_resize(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """What preprocessing did before: the torch call this module replaces."""
    x = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None, None]
    y = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return y[0, 0].numpy()


def comparison_drawings() -> list[list[list[list[float]]]]:
    """The repo's comparison drawings: the packaged probe set and the hand-style digits in every variation."""
    probes = [p.strokes for p in packaged_probes()]
    return probes + [draw(d, **v) for d in range(10) for v in variations()]


def as_pixel_drawing(image: np.ndarray, ink_height: int) -> np.ndarray:
    """A 28x28 image with the same digit `ink_height` px tall (nearest pixel), as a pixel-mode client
    might send: unlike a stroke drawing, whose ink is already BOX px, its crop needs a real resize."""
    ys, xs = np.nonzero(image)
    crop = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    width = min(28, max(1, round(w * ink_height / h)))
    rows = (np.arange(ink_height) * h // ink_height)[:, None]
    out = np.zeros((28, 28), dtype=np.float32)
    out[28 - ink_height :, :width] = crop[rows, np.arange(width) * w // width]
    return out


def comparison_images() -> Iterator[np.ndarray]:
    """Each comparison drawing through both entry points: its strokes, and its rendering as pixels at
    ink heights from 4 to 28 px."""
    for i, strokes in enumerate(comparison_drawings()):
        image = strokes_to_image(strokes, 280, 280)
        yield image
        yield pixels_to_image(as_pixel_drawing(image, 4 + (i * 5) % 25))


def recorded_crops() -> list[Case]:
    """The crops and sizes the preprocessing resizes for the comparison drawings."""
    seen: list[Case] = []

    def spy(crop: np.ndarray, height: int, width: int) -> np.ndarray:
        seen.append((np.array(crop, dtype=np.float32), height, width))
        return resize_bilinear_antialias(crop, height, width)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(preprocessing, "resize_bilinear_antialias", spy)
        images = len(list(comparison_images()))
    assert len(seen) == images  # one resize per image: the spy sits where the preprocessing calls
    return seen


def random_crop(rng: np.random.Generator, h: int, w: int, kind: int) -> np.ndarray:
    """Ink-like crops: dense noise, sparse strokes, hard 0/1 masks, and faint values."""
    x = rng.random((h, w), dtype=np.float32)
    if kind == 1:
        return np.where(rng.random((h, w)) < 0.3, x, np.float32(0.0))
    if kind == 2:
        return (x < 0.5).astype(np.float32)
    if kind == 3:
        return x * np.float32(1e-3)
    return x


def random_cases() -> list[Case]:
    """Every crop size 1..28 x 1..28 to its preprocessing size and to two random sizes in 1..BOX
    (up- and down-scaling, non-square), and every (input, output) side pair on each axis."""
    rng = np.random.default_rng(15)
    cases: list[Case] = []
    for h in range(1, MAX_CROP + 1):
        for w in range(1, MAX_CROP + 1):
            sizes = [boxed_size(h, w), *(tuple(rng.integers(1, BOX + 1, 2).tolist()) for _ in range(2))]
            for oh, ow in sizes:
                cases.append((random_crop(rng, h, w, len(cases) % 4), oh, ow))
    for n in range(1, MAX_CROP + 1):
        for o in range(1, BOX + 1):
            other, other_out = int(rng.integers(1, MAX_CROP + 1)), int(rng.integers(1, BOX + 1))
            cases.append((random_crop(rng, n, other, len(cases) % 4), o, other_out))
            cases.append((random_crop(rng, other, n, len(cases) % 4), other_out, o))
    return cases


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return random_cases() + recorded_crops()


# A fresh interpreter, so torch picks its portable kernel (the capability is read once, at first use).
PORTABLE_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np, torch, torch.nn.functional as F
    assert str(torch.backends.cpu.get_cpu_capability()) == "DEFAULT", torch.backends.cpu.get_cpu_capability()
    sizes, data = np.load(sys.argv[1]), np.load(sys.argv[2])
    out = []
    for i, (h, w) in enumerate(sizes):
        x = torch.from_numpy(data[f"arr_{i}"])[None, None]
        y = F.interpolate(x, size=(int(h), int(w)), mode="bilinear", antialias=True, align_corners=False)
        out.append(y[0, 0].numpy())
    np.savez(sys.argv[3], *out)
    """
)


def portable_torch(cases: list[Case], folder: Path) -> list[np.ndarray]:
    sizes, crops, results = folder / "sizes.npy", folder / "crops.npz", folder / "results.npz"
    np.save(sizes, np.array([(h, w) for _, h, w in cases]))
    np.savez(crops, *(crop for crop, _, _ in cases))
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}
    child = [sys.executable, "-c", PORTABLE_CHILD, str(sizes), str(crops), str(results)]
    subprocess.run(child, env=env, check=True, timeout=300)
    with np.load(results) as out:
        return [out[f"arr_{i}"] for i in range(len(cases))]


Reference = Callable[[int, Case], np.ndarray]  # case number, case -> torch's output


def differences(cases: list[Case], reference: Reference) -> tuple[list[str], float, int]:
    """The cases whose NumPy resize is not bit-identical to the reference, the largest difference,
    and the number of pixels compared."""
    unequal, worst, pixels = [], 0.0, 0
    for i, case in enumerate(cases):
        crop, h, w = case
        ours, theirs = resize_bilinear_antialias(crop, h, w), reference(i, case)
        assert ours.shape == theirs.shape == (h, w)
        assert ours.dtype == theirs.dtype == np.float32
        assert ours.flags.c_contiguous
        if not np.array_equal(ours, theirs):
            unequal.append(f"{crop.shape[0]}x{crop.shape[1]}->{h}x{w}")
            worst = max(worst, float(np.abs(ours.astype(np.float64) - theirs).max()))
        pixels += h * w
    return unequal, worst, pixels


def test_the_cases_cover_every_size_the_preprocessing_makes(cases: list[Case]) -> None:
    pairs = {(c.shape[0], h) for c, h, _ in cases} | {(c.shape[1], w) for c, _, w in cases}
    assert {(n, o) for n in range(1, MAX_CROP + 1) for o in range(1, BOX + 1)} <= pairs


def test_bit_identical_to_torch_portable_kernel(cases: list[Case], tmp_path: Path) -> None:
    reference = portable_torch(cases, tmp_path)
    unequal, worst, pixels = differences(cases, lambda i, _: reference[i])
    print(f"portable kernel: {len(unequal)} of {len(cases)} resizes ({pixels} px) differ, max {worst:.3g}")
    assert not unequal, f"{len(unequal)} of {len(cases)} differ (max {worst:.3g}), e.g. {unequal[:5]}"


def test_within_fma_drift_of_torch_default_kernel(cases: list[Case]) -> None:
    unequal, worst, pixels = differences(cases, lambda _, case: torch_resize(*case))
    kernel = torch.backends.cpu.get_cpu_capability()
    print(f"{kernel} kernel: {len(unequal)} of {len(cases)} resizes ({pixels} px) differ, max {worst:.3g}")
    assert worst <= MAX_DRIFT, unequal[:5]


def test_final_images_match_the_torch_preprocessing(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = list(comparison_images())
    calls: list[tuple[np.ndarray, int, int]] = []

    def old_resize(crop: np.ndarray, height: int, width: int) -> np.ndarray:
        calls.append((crop, height, width))
        return torch_resize(crop, height, width)

    monkeypatch.setattr(preprocessing, "resize_bilinear_antialias", old_resize)
    theirs = list(comparison_images())
    assert len(calls) == len(theirs)  # every image went through torch's resize
    worst = max(float(np.abs(a.astype(np.float64) - b).max()) for a, b in zip(ours, theirs, strict=True))
    identical = sum(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    print(f"final 28x28 images: {identical} of {len(ours)} identical to torch's, max difference {worst:.3g}")
    assert worst <= MAX_DRIFT


def test_one_column_keeps_torchs_first_row_for_every_row() -> None:
    """torch's vertical pass over a single column repeats its first output row (see resize.py)."""
    column = np.linspace(0.1, 1.0, 10, dtype=np.float32)[:, None]
    out = resize_bilinear_antialias(column, 5, 1)
    np.testing.assert_allclose(out, torch_resize(column, 5, 1), rtol=0, atol=MAX_DRIFT)
    assert (out == out[0]).all()


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="positive size"):
        resize_bilinear_antialias(np.ones((3, 3), np.float32), 0, 2)
    with pytest.raises(ValueError, match="2-D"):
        resize_bilinear_antialias(np.ones(3, np.float32), 2, 2)
