"""The stroke preprocessing's output is pinned: a faster version must draw the very same pixels.

tests/core/fixtures/raster_digests.json holds a digest of `_rasterise`'s float32 raster for each
comparison drawing (the packaged probe set, then the hand-style digits in every variation), made by the
rasteriser as it was before it was made faster; tests/core/fixtures/image_digests.json the same for
`strokes_to_image`'s final 28x28 image (validation, rasterising, crop, resize, centring), made before its
Python-level work was cut. A change that moves any pixel fails here; a deliberate change of the drawing
re-baselines both files with
`PYTHONPATH=tests:$PYTHONPATH python tests/core/test_rasterise_identity.py` (after `source scripts/lib.sh`).
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from support.digit_strokes import draw, variations

from guessme_contracts.probes import packaged_probes
from guessme_core import strokes_to_image
from guessme_core.preprocessing import _rasterise, _validate_strokes

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent / "fixtures"
RASTER_DIGESTS = FIXTURES / "raster_digests.json"
IMAGE_DIGESTS = FIXTURES / "image_digests.json"


def comparison_drawings() -> list[tuple[object, float, float]]:
    drawings: list[tuple[object, float, float]] = [(p.strokes, p.width, p.height) for p in packaged_probes()]
    drawings += [(draw(d, **v), 280, 280) for d in range(10) for v in variations()]  # type: ignore[arg-type]
    return drawings


def digest(array: np.ndarray) -> str:
    assert array.dtype == np.float32
    return hashlib.sha256(array.tobytes()).hexdigest()[:16]


def raster_digests() -> list[str]:
    return [digest(_rasterise(_validate_strokes(s, w, h))) for s, w, h in comparison_drawings()]


def image_digests() -> list[str]:
    return [digest(strokes_to_image(s, w, h)) for s, w, h in comparison_drawings()]


def assert_pinned(now: list[str], fixture: Path) -> None:
    pinned = json.loads(fixture.read_text())["digests"]
    assert len(now) == len(pinned)
    moved = [i for i, (a, b) in enumerate(zip(now, pinned, strict=True)) if a != b]
    assert not moved, f"{len(moved)} of {len(now)} comparison drawings come out differently: {moved[:10]}"


def test_rasteriser_draws_the_pinned_pixels() -> None:
    assert_pinned(raster_digests(), RASTER_DIGESTS)


def test_strokes_to_image_gives_the_pinned_images() -> None:
    assert_pinned(image_digests(), IMAGE_DIGESTS)


if __name__ == "__main__":
    for path, what, digests in [
        (RASTER_DIGESTS, "_rasterise", raster_digests()),
        (IMAGE_DIGESTS, "strokes_to_image", image_digests()),
    ]:
        about = f"sha256 (16 hex) of guessme_core.preprocessing.{what} per comparison drawing; see the test"
        path.write_text(json.dumps({"about": about, "digests": digests}, indent=1) + "\n")
