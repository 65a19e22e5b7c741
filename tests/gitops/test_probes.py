"""The probe-set contract (guessme_contracts.probes): the committed set, its threshold, and the scoring
rules both the local sync and the cluster verify task use."""

from pathlib import Path
from typing import Any

import pytest

from guessme_contracts.probes import (
    PROBE_SET,
    ProbeError,
    ProbeScore,
    ProbeSetError,
    parse_probes,
    score,
    threshold,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
URI = "models:/guessme-cnn/4"


def test_the_committed_probe_set_and_threshold_parse() -> None:
    probes = parse_probes((REPO / PROBE_SET).read_text())
    assert sorted({p.label for p in probes}) == list(range(10))
    assert 0 < threshold((REPO / "params.yaml").read_text()) <= 1


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"probes": []}', "probes:"),
        ('{"probes": [{"label": 3, "width": 280, "height": 280, "strokes": []}]}', "probes.0.strokes:"),
        (
            '{"probes": [{"label": "three", "width": 280, "height": 280, "strokes": [[[1, 2]]]}]}',
            "probes.0.label:",
        ),
        ("not json", "the document: Invalid JSON"),
    ],
)
def test_a_bad_probe_set_is_a_one_line_error_that_says_where(text: str, where: str) -> None:
    with pytest.raises(ProbeSetError, match=f"is not a probe set: {where}") as failed:
        parse_probes(text)
    assert "\n" not in str(failed.value)


@pytest.mark.parametrize(
    "params",
    [
        "promote:\n  min_accuracy: 0.5\n",
        "promote:\n  verify_min_accuracy: 0\n",
        "promote:\n  verify_min_accuracy: true\n",
        "x: [",
        "",
    ],
)
def test_the_threshold_has_no_default(params: str) -> None:
    with pytest.raises(ProbeSetError):
        threshold(params)


def test_score_counts_right_answers_of_the_named_model_only() -> None:
    probes = parse_probes((REPO / PROBE_SET).read_text())

    def half_right(drawing: dict[str, Any]) -> dict[str, Any]:
        label = next(p.label for p in probes if p.drawing == drawing)
        return {"digit": label if label < 5 else 0, "model_uri": URI}

    result = score(half_right, URI, probes, 0.5)
    assert (result.right, result.total, result.passed) == (len(probes) // 2, len(probes), True)
    assert not score(half_right, URI, probes, 0.9).passed
    with pytest.raises(ProbeError, match=f"probe set: {URI} answered, not models:/guessme-cnn/5"):
        score(half_right, "models:/guessme-cnn/5", probes, 0.5)


def test_summary_names_score_count_and_threshold() -> None:
    assert ProbeScore(URI, 3, 20, 0.8).summary() == (
        "probe set: it recognises 15% of 20 drawings (3 right), below promote.verify_min_accuracy 80%"
    )
    assert ProbeScore(URI, 16, 20, 0.8).passed  # the threshold itself passes
