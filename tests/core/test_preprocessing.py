"""Preprocessing: MNIST-style normalisation invariants, and clear errors for bad input."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.digit_strokes import draw

from guessme_core import PreprocessingError, pixels_to_image, strokes_to_image, to_batch
from guessme_core.preprocessing import (
    BOX,
    MAX_CANVAS,
    MAX_POINTS,
    MAX_STROKES,
    SUPERSAMPLE,
    _block_means,
    _kept_segments,
    _nearest_segment_dist2,
    _segments,
)

pytestmark = pytest.mark.unit
CENTRE = (28 - 1) / 2


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[0:28, 0:28]
    total = img.sum()
    return float((img * ys).sum() / total), float((img * xs).sum() / total)


def ink_box(img: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(img > 0)
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def assert_mnist_style(img: np.ndarray) -> None:
    assert img.shape == (28, 28)
    assert img.dtype == np.float32
    assert np.isfinite(img).all()
    assert img.min() >= 0.0
    assert img.max() <= 1.0
    assert img.max() > 0.5  # strokes reach (nearly) full ink
    cy, cx = centre_of_mass(img)
    # MNIST shifts by whole pixels: the centre of mass lands within half a pixel of the centre.
    assert abs(cy - CENTRE) <= 0.5 + 1e-6
    assert abs(cx - CENTRE) <= 0.5 + 1e-6
    assert max(ink_box(img)) <= BOX + 1


# --- invariants -------------------------------------------------------------------------------


@pytest.mark.parametrize("digit", range(10))
def test_drawn_digits_come_out_mnist_style(digit: int) -> None:
    img = strokes_to_image(draw(digit), 280, 280)
    assert_mnist_style(img)
    # Longer side scaled to 20 px (the pen adds a little).
    assert max(ink_box(img)) >= BOX - 1


@pytest.mark.parametrize("digit", [2, 4, 8])
def test_stroke_translation_invariance(digit: int) -> None:
    here = strokes_to_image(draw(digit, height=100, centre=(70, 70)), 280, 280)
    there = strokes_to_image(draw(digit, height=100, centre=(200, 190)), 280, 280)
    np.testing.assert_allclose(here, there, atol=1e-5)


@pytest.mark.parametrize("digit", [3, 5, 7])
def test_stroke_scale_invariance_and_constant_line_width(digit: int) -> None:
    small = strokes_to_image(draw(digit, height=50), 280, 280)
    large = strokes_to_image(draw(digit, height=250), 280, 280)
    # The same drawing at any size on any canvas gives (nearly) the same image, line width included.
    assert np.abs(small - large).mean() < 0.01
    assert small.sum() == pytest.approx(large.sum(), rel=0.03)
    on_big_canvas = strokes_to_image(draw(digit, canvas=1000, height=800, centre=(500, 500)), 1000, 1000)
    assert np.abs(on_big_canvas - large).mean() < 0.01


def test_pixels_translation_invariance() -> None:
    img = np.zeros((28, 28), dtype=np.float32)
    img[3:12, 4:9] = 1.0
    shifted = np.roll(img, (10, 12), axis=(0, 1))
    np.testing.assert_array_equal(pixels_to_image(img), pixels_to_image(shifted))


def test_pixels_come_out_mnist_style() -> None:
    img = np.zeros((28, 28), dtype=np.float32)
    img[2:6, 2:20] = 0.8  # a wide, off-centre bar
    out = pixels_to_image(img)
    assert_mnist_style(out)
    assert ink_box(out)[1] == BOX  # longer side scaled to exactly 20 px


def test_an_mnist_style_image_is_left_almost_unchanged() -> None:
    mnist_like = strokes_to_image(draw(6), 280, 280)
    again = pixels_to_image(mnist_like)
    assert np.abs(again - mnist_like).mean() < 0.02


def test_to_batch_gives_model_input() -> None:
    images = [strokes_to_image(draw(d), 280, 280) for d in (0, 1, 2)]
    batch = to_batch(images)
    assert isinstance(batch, np.ndarray)  # NumPy, so that serving needs no torch
    assert batch.shape == (3, 1, 28, 28)
    assert batch.dtype == np.float32
    assert batch.flags.c_contiguous
    np.testing.assert_array_equal(batch[1, 0], images[1])


def test_a_single_dot_is_a_valid_drawing() -> None:
    assert_mnist_style(strokes_to_image([[[100], [100]]], 280, 280))


coords = st.floats(min_value=0, max_value=280, allow_nan=False)
stroke = st.integers(1, 30).flatmap(
    lambda n: st.tuples(st.lists(coords, min_size=n, max_size=n), st.lists(coords, min_size=n, max_size=n))
)


def brute_force_dist2(seg: np.ndarray, size: int) -> np.ndarray:
    """Every pixel centre against every whole segment: the obvious, slow definition."""
    c = np.arange(size) + 0.5
    p = np.stack(np.meshgrid(c, c), axis=-1).reshape(-1, 1, 2)  # (P, 1, 2), row-major
    a, ab = seg[None, :, 0], seg[None, :, 1] - seg[None, :, 0]
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    d = p - (a + t[..., None] * ab)
    return (d * d).sum(-1).min(axis=1)


raster_point = st.tuples(st.floats(0, 88), st.floats(0, 88))


@settings(max_examples=60, deadline=None)
@given(strokes=st.lists(st.lists(raster_point, min_size=1, max_size=25), min_size=1, max_size=4))
def test_windowed_distances_match_brute_force(strokes: list[list[tuple[float, float]]]) -> None:
    """The fast rasteriser measures each segment piece only near itself; where ink can be, it must
    agree with measuring every pixel against every segment (and elsewhere be out of reach too)."""
    seg = _segments([np.array(s, dtype=np.float64) for s in strokes])
    reach = 4.9
    fast, exact = _nearest_segment_dist2(seg, 88, reach), brute_force_dist2(seg, 88)
    near = exact < reach * reach
    np.testing.assert_allclose(fast[near], exact[near], rtol=1e-9, atol=1e-9)
    assert (fast[~near] >= reach * reach - 1e-9).all()


def test_block_means_are_numpys_means_bit_for_bit() -> None:
    """_block_means claims NumPy's summation order: on values of every magnitude, where another
    order differs in about half the blocks, it must give exactly NumPy's means."""
    rng = np.random.default_rng(0)
    ss = SUPERSAMPLE
    for _ in range(20):
        image = rng.random((22 * ss, 22 * ss)) * 10.0 ** rng.uniform(-3, 3, (22 * ss, 22 * ss))
        expected = image.reshape(22, ss, 22, ss).mean(axis=(1, 3))
        assert _block_means(image, ss).tobytes() == expected.tobytes()


# Steps around the 0.5 px at which the point loop starts dropping points, and well past it.
step = st.one_of(
    st.floats(0.0, 0.6), st.sampled_from([0.5, 0.5 - 1e-12, 0.5 + 1e-12, 0.5 + 2e-9]), st.floats(0.6, 6)
)


@settings(max_examples=80, deadline=None)
@given(
    start=raster_point,
    steps=st.lists(st.tuples(step, st.floats(0, 2 * math.pi)), min_size=0, max_size=30),
)
def test_vectorised_segments_are_the_point_loops(
    start: tuple[float, float], steps: list[tuple[float, float]]
) -> None:
    """_segments skips the per-point loop when every step is clearly long enough; either way it must
    give exactly the loop's segments."""
    pts = [start]
    for length, angle in steps:
        pts.append((pts[-1][0] + length * math.cos(angle), pts[-1][1] + length * math.sin(angle)))
    polyline = np.array(pts, dtype=np.float64)
    np.testing.assert_array_equal(
        _segments([polyline, polyline[::-1]]),
        np.concatenate([_kept_segments(polyline), _kept_segments(polyline[::-1])]),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strokes=st.lists(stroke, min_size=1, max_size=4))
def test_any_valid_drawing_gives_an_mnist_style_image(strokes: list[tuple[list[float], list[float]]]) -> None:
    img = strokes_to_image([list(map(list, s)) for s in strokes], 280, 280)
    assert_mnist_style(img)


# --- bad input: a PreprocessingError (a ValueError) that names the problem --------------------

GOOD = [[[10.0, 50.0], [10.0, 60.0]]]


@pytest.mark.parametrize(
    ("strokes", "width", "height", "message"),
    [
        ([], 280, 280, "empty drawing"),
        ([[[], []]], 280, 280, "no points"),
        ([[[1.0, math.nan], [1.0, 2.0]]], 280, 280, "NaN or infinite"),
        ([[[1.0, math.inf], [1.0, 2.0]]], 280, 280, "NaN or infinite"),
        ([[[1.0, 2.0], [1.0]]], 280, 280, "xs has 2 values but ys has 1"),
        ([[[1.0, 2.0]]], 280, 280, "must be [xs, ys]"),
        ([[1.0, 2.0]], 280, 280, "lists of numbers"),
        ("not strokes", 280, 280, "non-empty list"),
        ([[["a", "b"], [1.0, 2.0]]], 280, 280, "must be numbers"),
        ([[[True, False], [1.0, 2.0]]], 280, 280, "must be numbers"),
        ([[[[1.0], [2.0]], [[1.0], [2.0]]]], 280, 280, "must be numbers"),
        ([[[[1.0, 5.0]], [[1.0, 7.0]]]], 280, 280, "must be numbers"),
        ([[[10.0, 300.0], [10.0, 20.0]]], 280, 280, "outside the 280x280 canvas"),
        ([[[-1.0, 20.0], [10.0, 20.0]]], 280, 280, "outside"),
        (GOOD, 0, 280, "canvas size"),
        (GOOD, 280, -5, "canvas size"),
        (GOOD, MAX_CANVAS + 1, 280, "canvas size"),
        (GOOD, 1e300, 280, "canvas size"),
        (GOOD, math.nan, 280, "width must be finite"),
        (GOOD, "280", 280, "width must be a number"),
        (GOOD, None, 280, "width must be a number"),
        ([[[1.0], [1.0]]] * (MAX_STROKES + 1), 280, 280, "too many strokes"),
        ([[[1.0] * (MAX_POINTS + 1), [1.0] * (MAX_POINTS + 1)]], 280, 280, "too many points"),
    ],
)
def test_bad_strokes_are_named(strokes: object, width: object, height: object, message: str) -> None:
    with pytest.raises(PreprocessingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        strokes_to_image(strokes, width, height)


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (np.zeros((28, 28)), "empty drawing"),
        (np.full((28, 28), np.nan), "NaN or infinite"),
        (np.full((28, 28), np.inf), "NaN or infinite"),
        (np.zeros((27, 28)), "shape 28x28, got 27x28"),
        (np.zeros((1, 28, 28)), "got 1x28x28"),
        (np.zeros(784), "got 784"),
        (3.0, "got a scalar"),
        ([[0.0] * 28] * 27 + [[0.0] * 5], "28x28 array of numbers"),
        (np.full((28, 28), 2.0), r"\[0, 1\]"),
        (np.full((28, 28), -0.5), r"\[0, 1\]"),
        ([["x"] * 28] * 28, "28x28 array of numbers"),
    ],
)
def test_bad_pixels_are_named(pixels: object, message: str) -> None:
    with pytest.raises(PreprocessingError, match=message):
        pixels_to_image(pixels)


def test_numpy_numbers_are_accepted_as_canvas_size() -> None:
    img = strokes_to_image(GOOD, np.int64(280), np.float32(280.0))
    assert_mnist_style(img)


junk = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(strokes=junk, width=st.one_of(st.floats(), st.integers(), st.none()))
def test_junk_strokes_raise_only_preprocessing_errors(strokes: object, width: object) -> None:
    try:
        img = strokes_to_image(strokes, width, 280)
    except PreprocessingError:
        return
    assert_mnist_style(img)
