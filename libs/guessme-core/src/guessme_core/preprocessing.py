"""Drawings -> MNIST-style 28x28 images, made the way MNIST itself was made.

MNIST digits were cropped to their ink, scaled so the longer side is 20 px (aspect ratio kept,
anti-aliased), and placed in a 28x28 field by their centre of mass. Both entry points end in
that same normalisation, so a canvas drawing looks to the model like an MNIST digit.

Vector strokes are rasterised with a pen of fixed width *in the 20 px box*, so the line width
the model sees does not depend on the canvas size or on how large the digit was drawn.
"""

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from guessme_contracts.limits import MAX_CANVAS, MAX_POINTS, MAX_STROKES  # the drawing limits enforced here
from guessme_core.model_io import IMAGE_SIZE
from guessme_core.resize import resize_bilinear_antialias

BOX = 20  # MNIST's size-normalised box
PEN_WIDTH = 2.2  # stroke width in output pixels, close to MNIST's typical line
SUPERSAMPLE = 4  # rasterise at 4x and average down: anti-aliasing
_PIECE = 4.0  # px at SUPERSAMPLE x: longer segments are measured in pieces (see below)
_PIECE_CHUNK = 2048  # pieces per vectorised step: ~0.5M pixel distances, a few MB of temporaries
_MIN_STEP = 0.5  # px at SUPERSAMPLE x: a point closer than this to the last kept one is dropped
_STEP_MARGIN = 1e-9  # px: far above the ulps by which math.hypot and np.hypot may differ (see _segments)
# A piece's window reaches this much past `reach`: far more than the rounding of its bounds (~1e-13 px),
# so a pixel left out is measurably out of reach (its ink exactly 0), whatever the rounding.
_WINDOW_SLACK = 1e-6


class PreprocessingError(ValueError):
    """A drawing that cannot be turned into an image; the message names the problem."""


def pixels_to_image(pixels: Any) -> np.ndarray:
    """A 28x28 array of ink values in [0, 1] -> normalised 28x28 float32 image."""
    try:
        arr = np.asarray(pixels, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise PreprocessingError(f"pixels must be a 28x28 array of numbers: {exc}") from None
    if arr.shape != (IMAGE_SIZE, IMAGE_SIZE):
        got = "x".join(map(str, arr.shape)) or "a scalar"
        raise PreprocessingError(f"pixels must have shape {IMAGE_SIZE}x{IMAGE_SIZE}, got {got}")
    if not np.isfinite(arr).all():
        raise PreprocessingError("pixels contain NaN or infinite values")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise PreprocessingError(f"pixels must lie in [0, 1], got [{arr.min():g}, {arr.max():g}]")
    return normalize_image(arr)


def strokes_to_image(strokes: Any, width: float, height: float) -> np.ndarray:
    """Vector strokes `[[xs, ys], ...]` in canvas coordinates -> normalised 28x28 image."""
    points = _validate_strokes(strokes, width, height)
    return normalize_image(_rasterise(points))


def normalize_image(image: np.ndarray) -> np.ndarray:
    """Crop to the ink, scale the longer side to 20 px, centre the mass in 28x28."""
    ink = image > 0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if len(rows) == 0:
        raise PreprocessingError("empty drawing: there is no ink")
    crop = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    resized = resize_bilinear_antialias(crop, *boxed_size(*crop.shape))  # torch's antialiased bilinear
    # minimum/maximum, not np.clip: the same values without np.clip's per-call overhead.
    return _place_by_centre_of_mass(np.minimum(np.maximum(resized, 0.0), 1.0))


def boxed_size(height: int, width: int) -> tuple[int, int]:
    """The size an ink crop is scaled to: longer side BOX px, aspect ratio kept, at least 1 px."""
    scale = BOX / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def to_batch(images: Sequence[np.ndarray]) -> np.ndarray:
    """Normalised 28x28 images -> the model's (N, 1, 28, 28) float32 input, a C-contiguous NumPy
    array (torch callers wrap it with `torch.from_numpy`, which shares the memory)."""
    return np.ascontiguousarray(np.stack(images).astype(np.float32, copy=False)[:, None])


def _place_by_centre_of_mass(img: np.ndarray) -> np.ndarray:
    h, w = img.shape
    total = float(img.sum())
    if total <= 0.0:
        raise PreprocessingError("empty drawing: there is no ink")
    cy = float((img.sum(axis=1) * np.arange(h)).sum()) / total
    cx = float((img.sum(axis=0) * np.arange(w)).sum()) / total
    centre = (IMAGE_SIZE - 1) / 2
    # Integer shift, like MNIST; clamped so no ink leaves the field.
    top = min(max(round(centre - cy), 0), IMAGE_SIZE - h)
    left = min(max(round(centre - cx), 0), IMAGE_SIZE - w)
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out[top : top + h, left : left + w] = img
    return out


def _number(value: Any, name: str) -> float:
    # numbers.Real: Python and NumPy ints/floats alike; bool is a number to Python but never a size.
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise PreprocessingError(f"{name} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # a Python int beyond float range
        raise PreprocessingError(f"{name} is absurdly large") from None
    if not np.isfinite(number):
        raise PreprocessingError(f"{name} must be finite, got {value}")
    return number


def _validate_strokes(strokes: Any, width: Any, height: Any) -> list[np.ndarray]:
    w, h = _number(width, "width"), _number(height, "height")
    if not (0 < w <= MAX_CANVAS and 0 < h <= MAX_CANVAS):
        raise PreprocessingError(f"canvas size must be in (0, {MAX_CANVAS}] px, got {w:g}x{h:g}")
    if not isinstance(strokes, list | tuple) or len(strokes) == 0:
        raise PreprocessingError("empty drawing: strokes must be a non-empty list of [xs, ys]")
    if len(strokes) > MAX_STROKES:
        raise PreprocessingError(f"too many strokes: {len(strokes)} > {MAX_STROKES}")
    out: list[np.ndarray] = []
    total = 0
    for i, stroke in enumerate(strokes):
        if not isinstance(stroke, list | tuple) or len(stroke) != 2:
            raise PreprocessingError(f"stroke {i} must be [xs, ys]")
        xs, ys = stroke
        if not isinstance(xs, list | tuple) or not isinstance(ys, list | tuple):
            raise PreprocessingError(f"stroke {i}: xs and ys must be lists of numbers")
        if len(xs) != len(ys):
            raise PreprocessingError(f"stroke {i}: xs has {len(xs)} values but ys has {len(ys)}")
        if len(xs) == 0:
            raise PreprocessingError(f"stroke {i} has no points")
        total += len(xs)
        if total > MAX_POINTS:
            raise PreprocessingError(f"too many points: more than {MAX_POINTS}")
        try:
            xys = np.array([xs, ys], dtype=np.float64)
        except (TypeError, ValueError):
            raise PreprocessingError(f"stroke {i}: coordinates must be numbers") from None
        # The types present, found in C: a per-value isinstance in a generator cost more than the rest.
        # Nested lists make a 3-D array: numbers only.
        if xys.ndim != 2 or bool in {*map(type, xs), *map(type, ys)}:
            raise PreprocessingError(f"stroke {i}: coordinates must be numbers")
        # Each axis' least and greatest value: NaN propagates into them, so do infinities.
        (x0, y0), (x1, y1) = xys.min(axis=1).tolist(), xys.max(axis=1).tolist()
        if not all(map(math.isfinite, (x0, y0, x1, y1))):
            raise PreprocessingError(f"stroke {i}: coordinates contain NaN or infinite values")
        if x0 < 0 or x1 > w or y0 < 0 or y1 > h:
            raise PreprocessingError(f"stroke {i}: coordinates outside the {w:g}x{h:g} canvas")
        out.append(xys.T)
    return out


def _rasterise(strokes: list[np.ndarray]) -> np.ndarray:
    """Draw the strokes, scaled so that ink (pen included) spans BOX px, at SUPERSAMPLE x.

    Each pixel's ink is `radius + 0.5 - distance to the nearest segment`, clipped to [0, 1]
    (a pen with a one-pixel anti-aliased rim), then averaged down SUPERSAMPLE x.
    """
    allpts = np.concatenate(strokes)
    lo = allpts.min(axis=0)
    extent = float((allpts.max(axis=0) - lo).max())
    ss = SUPERSAMPLE
    radius = PEN_WIDTH * ss / 2
    scale = (BOX - PEN_WIDTH) * ss / extent if extent > 0 else 0.0
    size = BOX * ss + 2 * ss  # room for the pen on every side
    offset = radius + ss
    seg = _segments([(pts - lo) * scale + offset for pts in strokes])
    dist2 = _nearest_segment_dist2(seg, size, reach=radius + 0.5)
    # minimum/maximum, not np.clip: the same values without np.clip's per-call overhead.
    ink = np.minimum(np.maximum(radius + 0.5 - np.sqrt(dist2), 0.0), 1.0).reshape(size, size)
    return _block_means(ink, ss).astype(np.float32)


def _block_means(image: np.ndarray, ss: int) -> np.ndarray:
    """(H*ss, W*ss) -> (H, W) means of ss x ss blocks: `.reshape(H, ss, W, ss).mean(axis=(1, 3))`'s
    values, added in its order, at a third of its cost (a NumPy reduction over two short strided
    axes runs its inner loop once per 4 values). NumPy's order: each block row summed left to right
    (pairwise summation is a plain loop below 8 terms: ss < 8), then those row sums top to bottom.
    """
    x = image.reshape(image.shape[0] // ss, ss, image.shape[1] // ss, ss)
    rows = x[:, :, :, 0] + x[:, :, :, 1]
    for j in range(2, ss):
        rows += x[:, :, :, j]
    total = rows[:, 0] + rows[:, 1]
    for i in range(2, ss):
        total += rows[:, i]
    return total / (ss * ss)


def _segments(strokes: list[np.ndarray]) -> np.ndarray:
    """Polylines in raster pixels -> (S, 2, 2) segments (start/end, x/y).

    Points closer than _MIN_STEP to the last kept one are dropped (same picture, fewer segments);
    a single point is a zero-length segment (a dot).
    """
    out = []
    for pts in strokes:
        step = pts[1:] - pts[:-1]
        # The game's points are a few pixels apart: when every step is clearly >= _MIN_STEP, the
        # loop in _kept_segments keeps every point, so the segments are the consecutive pairs.
        # Proof: the loop measures each point against the previous one (kept, by induction) with
        # the same subtraction; math.hypot and np.hypot are each within an ulp (~1e-16 here) of the
        # exact length, so a step np.hypot puts at >= _MIN_STEP + _STEP_MARGIN is >= _MIN_STEP to
        # math.hypot too. Anything closer takes the loop itself.
        if len(step) and np.hypot(step[:, 0], step[:, 1]).min() >= _MIN_STEP + _STEP_MARGIN:
            out.append(np.concatenate([pts[:-1], pts[1:]], axis=1).reshape(-1, 2, 2))
        else:
            out.append(_kept_segments(pts))
    return np.concatenate(out) if len(out) > 1 else out[0]


def _kept_segments(pts: np.ndarray) -> np.ndarray:
    """One polyline's segments with close points dropped; plain floats, a Python loop per point."""
    xs, ys = pts[:, 0].tolist(), pts[:, 1].tolist()
    kx, ky = [xs[0]], [ys[0]]
    for x, y in zip(xs, ys, strict=True):
        if math.hypot(x - kx[-1], y - ky[-1]) >= _MIN_STEP:
            kx.append(x)
            ky.append(y)
    if len(kx) == 1:
        kx.append(kx[0])
        ky.append(ky[0])
    p = np.array([kx, ky]).T
    return np.stack([p[:-1], p[1:]], axis=1)


def _nearest_segment_dist2(seg: np.ndarray, size: int, reach: float) -> np.ndarray:
    """Squared distance from each pixel centre of a size x size raster to its nearest segment,
    exact wherever it is below `reach` (beyond that, ink is 0 and only "far" matters).

    Segments are cut into pieces of at most _PIECE px (the distance to a segment is the least
    distance to its pieces), and each piece is measured only over a window of pixels around it:
    work grows with the length of the ink, not with canvas area x segments. The window holds
    every pixel whose centre lies within `reach` (plus _WINDOW_SLACK) of the piece's bounding box
    on both axes; every other pixel is farther than `reach` from the piece, so its ink from that
    piece is exactly 0 and leaving it out changes no pixel. One window size per chunk, the largest
    its pieces need: the game sends points a few pixels apart, so most pieces are far shorter
    than _PIECE.
    """
    a, ab = seg[:, 0], seg[:, 1] - seg[:, 0]
    n = np.ceil(np.hypot(ab[:, 0], ab[:, 1]) / _PIECE)
    if n.max() <= 1.0:
        # Every segment is one piece (the usual case): the general path below with k = 0, n = 1
        # gives t0 = 0.0 and t1 = 1.0, so pa = a + 0.0 * ab == a and pab = (a + 1.0 * ab) - a.
        pa, pab = a, (a + ab) - a
    else:
        n = np.maximum(1, n).astype(np.int64)
        which = np.repeat(np.arange(len(seg)), n)
        k = np.arange(len(which)) - np.repeat(np.cumsum(n) - n, n)
        t0, t1 = (k / n[which])[:, None], ((k + 1) / n[which])[:, None]
        aw, abw = a[which], ab[which]  # each piece's own segment
        pa = aw + t0 * abw  # (N, 2) piece starts and ends
        pab = (aw + t1 * abw) - pa

    dist2 = np.full(size * size, np.inf)
    grow = reach + _WINDOW_SLACK
    for c in range(0, len(pa), _PIECE_CHUNK):  # bounded temporaries, whatever the drawing
        ca, cab = pa[c : c + _PIECE_CHUNK], pab[c : c + _PIECE_CHUNK]
        cb = ca + cab
        # Pixel i's centre is i + 0.5: the first and last index within `grow` of [lo, hi], per axis.
        first = np.ceil(np.minimum(ca, cb) - (grow + 0.5)).astype(np.int64)  # (N, 2)
        last = np.floor(np.maximum(ca, cb) + (grow - 0.5)).astype(np.int64)
        winx, winy = (last - first).max(axis=0).tolist()
        ix = np.minimum(np.maximum(first[:, 0:1] + np.arange(winx + 1), 0), size - 1)  # (N, winx + 1)
        iy = np.minimum(np.maximum(first[:, 1:2] + np.arange(winy + 1), 0), size - 1)
        # x and y kept apart, squared until the end: (N, 1, winx) and (N, winy, 1) broadcast.
        apx = (ix + 0.5 - ca[:, 0:1])[:, None, :]
        apy = (iy + 0.5 - ca[:, 1:2])[:, :, None]
        abx, aby = cab[:, 0, None, None], cab[:, 1, None, None]
        # The same operations in the same order, in place: t = clip(ap.ab / |ab|^2), then
        # dx = apx - t * abx and dy = apy - t * aby (in t's buffer), then dx * dx + dy * dy.
        t = apx * abx + apy * aby
        t /= np.maximum(abx * abx + aby * aby, 1e-12)
        np.minimum(np.maximum(t, 0.0, out=t), 1.0, out=t)
        dx = t * abx
        np.subtract(apx, dx, out=dx)
        t *= aby
        dy = np.subtract(apy, t, out=t)
        dx *= dx
        dy *= dy
        dx += dy
        cells = (iy[:, :, None] * size + ix[:, None, :]).ravel()
        np.minimum.at(dist2, cells, dx.ravel())
    return dist2
