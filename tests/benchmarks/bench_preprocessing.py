"""The shared preprocessing without torch: the NumPy antialiased resize (guessme_core.resize) against
the torch call it replaced, per resize and end to end (strokes_to_image, pixels_to_image), in one run;
and strokes_to_image on the game's own messages (bench_players' frames: growing strokes, and the whole
digits the eager clients send), by stage.

Figures only: nothing here asserts a speed. The machine is shared: read them with `uptime`'s load.
"""

import json
import os
import statistics
import timeit
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from bench_players import drawings, frames
from support.digit_strokes import draw

from guessme_core import pixels_to_image, preprocessing, strokes_to_image
from guessme_core.preprocessing import _rasterise, _validate_strokes, normalize_image
from guessme_core.resize import _weights, resize_bilinear_antialias

pytestmark = pytest.mark.benchmark

REPEATS = 7


def torch_resize(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """The preprocessing's resize before this change."""
    x = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None, None]
    y = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return y[0, 0].numpy()


def compare(
    label: str,
    old: Callable[[], object],
    new: Callable[[], object],
    old_setup: Callable[[], AbstractContextManager[object]],
) -> None:
    """Old and new timed in alternation (REPEATS rounds each), so the machine's load hits both alike:
    best and median microseconds per call, and the ratio of the bests."""
    number = max(1, timeit.Timer(new).autorange()[0])
    times: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(REPEATS):
        with old_setup():
            times["old"].append(timeit.timeit(old, number=number) / number * 1e6)
        times["new"].append(timeit.timeit(new, number=number) / number * 1e6)
    (old_best, new_best), (old_med, new_med) = (
        (min(times["old"]), min(times["new"])),
        (statistics.median(times["old"]), statistics.median(times["new"])),
    )
    print(
        f"{label:<44} torch {old_best:8.1f} us (median {old_med:8.1f})   numpy {new_best:8.1f} us "
        f"(median {new_med:8.1f})   new/old {new_best / old_best:5.2f}x"
    )


@contextmanager
def torch_preprocessing() -> Iterator[None]:
    """The preprocessing as it was: its resize by torch."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(preprocessing, "resize_bilinear_antialias", torch_resize)
        yield


def test_resize_and_preprocessing_speed() -> None:
    torch.set_num_threads(1)  # as in a serving replica; these tensors are far below torch's grain size anyway
    rng = np.random.default_rng(0)
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    # Typical crops: a pixel-mode drawing's ink (down- and up-scaled), a stroke drawing's (already
    # BOX px long: torch copied it, the NumPy version returns it), and a worst case (28 px -> 1 px).
    for h, w, oh, ow in [
        (28, 19, 20, 14),
        (26, 26, 20, 20),
        (12, 8, 20, 13),
        (20, 14, 20, 14),
        (28, 2, 20, 1),
    ]:
        crop = rng.random((h, w), dtype=np.float32)
        compare(
            f"resize {h}x{w} -> {oh}x{ow}",
            partial(torch_resize, crop, oh, ow),
            partial(resize_bilinear_antialias, crop, oh, ow),
            nullcontext,
        )
    crop = rng.random((27, 18), dtype=np.float32)

    def uncached() -> None:
        _weights.cache_clear()
        resize_bilinear_antialias(crop, 20, 13)

    cold = timeit.timeit(uncached, number=200) / 200 * 1e6
    print(f"{'resize 27x18 -> 20x13, weights not cached':<44} numpy {cold:8.1f} us (once per size pair)")

    strokes = draw(3, height=180, wobble=0.01)
    image = strokes_to_image(strokes, 280, 280)
    ys, xs = np.nonzero(image)
    ink = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    pixels = np.zeros((28, 28), dtype=np.float32)  # the same 3 as a pixel drawing, 25 px tall
    rows, cols = np.arange(25) * ink.shape[0] // 25, np.arange(18) * ink.shape[1] // 18
    pixels[1:26, 4:22] = ink[rows][:, cols]
    compare(
        "strokes_to_image, a drawn 3",
        lambda: strokes_to_image(strokes, 280, 280),
        lambda: strokes_to_image(strokes, 280, 280),
        torch_preprocessing,
    )
    compare(
        "pixels_to_image, a 25 px tall 3",
        lambda: pixels_to_image(pixels),
        lambda: pixels_to_image(pixels),
        torch_preprocessing,
    )


def best_us_per_item(run: Callable[[], object], items: int) -> float:
    """Best of REPEATS runs, in microseconds per item."""
    return min(timeit.repeat(run, number=1, repeat=REPEATS)) / items * 1e6


def test_strokes_to_image_on_game_messages() -> None:
    """Per message, as the replica preprocesses them: the whole call and where its time goes (each
    stage timed alone, as a share of the whole)."""
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    growing = [json.loads(body) for d in drawings(12, seed=7) for body, _ in frames(d)]
    whole = [json.loads(frames(d)[-1][0]) for d in drawings(40, seed=100)]
    for label, messages in [("growing drawings", growing), ("whole digits", whole)]:
        batch = [(m["strokes"], m["width"], m["height"]) for m in messages]
        points = [_validate_strokes(*d) for d in batch]
        rasters = [_rasterise(p) for p in points]
        n = len(batch)
        total = best_us_per_item(lambda: [strokes_to_image(*d) for d in batch], n)  # noqa: B023
        stages = {
            "validate": best_us_per_item(lambda: [_validate_strokes(*d) for d in batch], n),  # noqa: B023
            "rasterise": best_us_per_item(lambda: [_rasterise(p) for p in points], n),  # noqa: B023
            "normalise": best_us_per_item(lambda: [normalize_image(r) for r in rasters], n),  # noqa: B023
        }
        mean_points = statistics.mean(sum(len(xs) for xs, _ in m["strokes"]) for m in messages)
        print(f"{label}: {n} messages, {mean_points:.0f} points on average, strokes_to_image {total:6.1f} us")
        print("  " + "   ".join(f"{k} {v:6.1f} us ({v / total:4.0%})" for k, v in stages.items()))
