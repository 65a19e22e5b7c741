"""Shared by training and serving, so the two cannot drift: the CNN and the preprocessing."""

from guessme_core.model import IMAGE_SIZE, NUM_CLASSES, GuessmeCNN
from guessme_core.preprocessing import (
    PreprocessingError,
    normalize_image,
    pixels_to_image,
    strokes_to_image,
    to_batch,
)

__all__ = [
    "IMAGE_SIZE",
    "NUM_CLASSES",
    "GuessmeCNN",
    "PreprocessingError",
    "normalize_image",
    "pixels_to_image",
    "strokes_to_image",
    "to_batch",
]
