"""Shared by training and serving, so the two cannot drift: the CNN and the preprocessing."""

from typing import TYPE_CHECKING, Any

from guessme_core.model_io import IMAGE_SIZE, NUM_CLASSES
from guessme_core.preprocessing import (
    PreprocessingError,
    normalize_image,
    pixels_to_image,
    strokes_to_image,
    to_batch,
)

if TYPE_CHECKING:
    from guessme_core.model import GuessmeCNN

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


def __getattr__(name: str) -> Any:
    # PEP 562: GuessmeCNN (and torch with it) loads on first use, so the serving replica never imports torch.
    if name == "GuessmeCNN":
        from guessme_core.model import GuessmeCNN

        return GuessmeCNN
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
