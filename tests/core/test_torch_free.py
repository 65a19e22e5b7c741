"""The serving replica must not import torch (~500 MB PSS per replica, issue 15): guessme_core's
preprocessing entry points and constants import without it; only the CNN brings torch in, on first use."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.unit

TORCH_FREE_CHILD = textwrap.dedent(
    """
    import sys
    import guessme_core
    from guessme_core import IMAGE_SIZE, NUM_CLASSES, PreprocessingError, normalize_image
    from guessme_core import pixels_to_image, strokes_to_image, to_batch
    to_batch([strokes_to_image([[[10.0, 50.0], [10.0, 60.0]]], 280, 280)])
    heavy = sorted(m for m in sys.modules if m.split(".")[0] == "torch")
    assert not heavy, heavy
    """
)


def test_preprocessing_imports_without_torch() -> None:
    """The serving replica must not import torch (~500 MB per replica): the shared entry points do not."""
    child = subprocess.run(
        [sys.executable, "-c", TORCH_FREE_CHILD], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr


def test_the_cnn_is_still_exported_lazily() -> None:
    import guessme_core
    from guessme_core import model

    assert guessme_core.GuessmeCNN is model.GuessmeCNN
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = guessme_core.no_such_name
