"""Hand-made stroke drawings of the ten digits, as a player would draw them on a canvas.

Each digit is a few polylines in a unit box (x right, y down, digits about 0.6 wide and 1 tall);
`draw()` places one on a canvas at a given size, position, slant and wobble and returns the
game's stroke format `[[xs, ys], ...]` in canvas pixels.
"""

from __future__ import annotations

import math

import numpy as np

Polyline = list[tuple[float, float]]


def _arc(
    cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, n: int = 24
) -> Polyline:
    """Points on an ellipse from start to end angle (degrees, 0 = right, 90 = down, clockwise on screen)."""
    angles = np.radians(np.linspace(start_deg, end_deg, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


DIGITS: dict[int, list[Polyline]] = {
    0: [_arc(0.3, 0.5, 0.3, 0.5, -90, 275, 40)],
    1: [[(0.18, 0.18), (0.34, 0.0), (0.34, 1.0)]],
    2: [[*_arc(0.3, 0.28, 0.28, 0.28, 200, 370, 20), (0.02, 1.0), (0.62, 1.0)]],
    3: [_arc(0.3, 0.26, 0.26, 0.26, 200, 450, 24) + _arc(0.3, 0.74, 0.3, 0.26, 270, 520, 24)],
    4: [[(0.42, 0.0), (0.0, 0.66), (0.62, 0.66)], [(0.46, 0.3), (0.46, 1.0)]],
    5: [[(0.58, 0.0), (0.08, 0.0), (0.04, 0.44), *_arc(0.3, 0.68, 0.3, 0.32, 230, 500, 24)]],
    6: [[(0.5, 0.0), (0.26, 0.22), (0.06, 0.5), *_arc(0.32, 0.7, 0.28, 0.3, 180, 540, 36)]],
    7: [[(0.0, 0.0), (0.62, 0.0), (0.22, 1.0)]],
    8: [_arc(0.3, 0.25, 0.24, 0.25, 90, 450, 30) + _arc(0.3, 0.74, 0.3, 0.26, -90, 270, 30)],
    9: [[*_arc(0.3, 0.28, 0.28, 0.28, 0, 360, 32), (0.58, 0.28), (0.5, 1.0)]],
}


def draw(
    digit: int,
    canvas: int = 280,
    height: float = 200.0,
    centre: tuple[float, float] = (140.0, 140.0),
    slant_deg: float = 0.0,
    wobble: float = 0.0,
    seed: int = 0,
) -> list[list[list[float]]]:
    """Strokes of `digit`, `height` px tall, centred at `centre`, sheared by `slant_deg`, with
    hand-tremor noise of `wobble` (fraction of the height); clipped to the canvas."""
    rng = np.random.default_rng(seed)
    shear = math.tan(math.radians(slant_deg))
    strokes = []
    for line in DIGITS[digit]:
        pts = np.array(line, dtype=np.float64)
        pts[:, 0] += shear * (0.5 - pts[:, 1])  # slant: the top leans right
        pts += rng.normal(0.0, wobble, pts.shape)
        pts = (pts - [0.3, 0.5]) * height + centre
        pts = np.clip(pts, 0.0, float(canvas))
        strokes.append([pts[:, 0].round(1).tolist(), pts[:, 1].round(1).tolist()])
    return strokes


def variations(canvas: int = 280) -> list[dict[str, float | tuple[float, float] | int]]:
    """Sizes, positions and slants a player might plausibly use on a `canvas` px square."""
    out: list[dict[str, float | tuple[float, float] | int]] = []
    for i, (height, centre) in enumerate(
        [
            (220.0, (140.0, 140.0)),
            (150.0, (140.0, 140.0)),
            (90.0, (70.0, 70.0)),
            (90.0, (210.0, 200.0)),
            (60.0, (140.0, 90.0)),
            (180.0, (120.0, 150.0)),
        ]
    ):
        for slant in (-10.0, 0.0, 12.0):
            out.append({"height": height, "centre": centre, "slant_deg": slant, "wobble": 0.01, "seed": i})
    return out
