"""Digits as a person draws them: pen strokes in a unit box (x right, y down), one list per stroke.

The shapes are deliberately plain handwriting, not MNIST samples; the browser tests move the mouse
along them, and the model has to read them through the real canvas -> strokes -> preprocessing path.
"""

import math

Path = list[tuple[float, float]]


def _arc(cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, n: int = 18) -> Path:
    """Points on an ellipse from start to end angle (degrees, 0 = right, 90 = down)."""
    return [
        (
            cx + rx * math.cos(math.radians(start_deg + (end_deg - start_deg) * i / (n - 1))),
            cy + ry * math.sin(math.radians(start_deg + (end_deg - start_deg) * i / (n - 1))),
        )
        for i in range(n)
    ]


DIGITS: dict[int, list[Path]] = {
    0: [_arc(0.5, 0.5, 0.27, 0.4, -90, 275, 30)],
    1: [[(0.42, 0.22), (0.55, 0.1), (0.55, 0.5), (0.55, 0.9)]],
    2: [[*_arc(0.5, 0.32, 0.25, 0.22, 190, 380, 14), (0.5, 0.6), (0.22, 0.88), (0.5, 0.88), (0.8, 0.88)]],
    3: [_arc(0.48, 0.3, 0.25, 0.2, 200, 450, 16) + _arc(0.48, 0.7, 0.28, 0.2, -90, 160, 16)],
    4: [
        [(0.6, 0.1), (0.4, 0.38), (0.2, 0.62), (0.5, 0.62), (0.82, 0.62)],
        [(0.62, 0.35), (0.62, 0.65), (0.62, 0.92)],
    ],
    5: [[(0.75, 0.12), (0.32, 0.12), (0.3, 0.45), *_arc(0.48, 0.66, 0.27, 0.22, -110, 150, 16)]],
    6: [[(0.65, 0.1), (0.48, 0.28), (0.33, 0.5), *_arc(0.5, 0.7, 0.2, 0.2, 180, 540, 22)]],
    7: [[(0.2, 0.15), (0.5, 0.15), (0.82, 0.15), (0.6, 0.5), (0.42, 0.9)]],
    8: [_arc(0.5, 0.3, 0.2, 0.19, 90, -270, 20) + _arc(0.5, 0.7, 0.24, 0.21, -90, 270, 22)],
    9: [[*_arc(0.5, 0.32, 0.22, 0.2, 0, 360, 22), (0.72, 0.55), (0.7, 0.9)]],
}
