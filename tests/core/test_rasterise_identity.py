"""The stroke rasteriser's output is pinned: a faster `_rasterise` must draw the very same pixels.

tests/core/fixtures/raster_digests.json holds a digest of `_rasterise`'s float32 raster for each
comparison drawing (the packaged probe set, then the hand-style digits in every variation), made by the
rasteriser as it was before it was made faster. A change that moves any pixel fails here; a deliberate
change of the drawing re-baselines the file with
`PYTHONPATH=tests:$PYTHONPATH python tests/core/test_rasterise_identity.py` (after `source scripts/lib.sh`).
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from support.digit_strokes import draw, variations

from guessme_contracts.probes import packaged_probes
from guessme_core.preprocessing import _rasterise, _validate_strokes

pytestmark = pytest.mark.unit

DIGESTS = Path(__file__).parent / "fixtures" / "raster_digests.json"


def raster_digests() -> list[str]:
    drawings = [(p.strokes, p.width, p.height) for p in packaged_probes()]
    drawings += [(draw(d, **v), 280, 280) for d in range(10) for v in variations()]
    out = []
    for strokes, width, height in drawings:
        raster = _rasterise(_validate_strokes(strokes, width, height))
        assert raster.dtype == np.float32
        out.append(hashlib.sha256(raster.tobytes()).hexdigest()[:16])
    return out


def test_rasteriser_draws_the_pinned_pixels() -> None:
    pinned = json.loads(DIGESTS.read_text())["digests"]
    now = raster_digests()
    assert len(now) == len(pinned)
    moved = [i for i, (a, b) in enumerate(zip(now, pinned, strict=True)) if a != b]
    assert not moved, f"{len(moved)} of {len(now)} comparison drawings rasterise differently: {moved[:10]}"


if __name__ == "__main__":
    about = "sha256 (16 hex) of guessme_core.preprocessing._rasterise per comparison drawing; see the test"
    DIGESTS.write_text(json.dumps({"about": about, "digests": raster_digests()}, indent=1) + "\n")
