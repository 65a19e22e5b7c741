"""The probe set: does a served model recognise a fixed set of labelled drawings?

A promotion is verified when the promoted model serves and recognises at least
`promote.verify_min_accuracy` (params.yaml) of the drawings in `PROBE_SET`, each sent to the serving
app's `/predict` (which renders it with the shared preprocessing of libs/guessme-core), every answer
coming from that model. One evaluation for every path: the serving replica scores a candidate in-process
before it swaps it in (guessme_serve.model_holder: a model that fails is refused, the old one keeps
serving), the local sync (guessme_local.sync) folds it into its health, and the cluster DAG's verify task
(guessme_pipeline.verify) runs it after the RayService is Ready.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Package data of guessme_contracts (pyproject's package-data), so every image that carries the contracts
# carries it: the serving image (its gate) and the Airflow image (the verify task). PROBE_SET is its
# repository path, where the local sync reads it from Git at the reconciled commit.
PROBE_SET_RESOURCE = "probe_set/digits.json"
PROBE_SET = PurePosixPath("libs/guessme-contracts/src/guessme_contracts") / PROBE_SET_RESOURCE
THRESHOLD_KEY = "verify_min_accuracy"  # under `promote:` in params.yaml


class ProbeError(RuntimeError):
    """The probe set could not be scored (unreadable set or threshold, /predict failing, another model
    answering); the message says why, in one line."""


class ProbeSetError(ProbeError):
    """The probe set or its threshold cannot be read: a fault of the commit, not of the serving app."""


class Probe(BaseModel):
    """One labelled drawing: `drawing` is the /predict body (strokes, width, height)."""

    model_config = ConfigDict(frozen=True)

    label: int = Field(ge=0, le=9)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    strokes: list[list[list[float]]] = Field(min_length=1)

    @property
    def drawing(self) -> dict[str, Any]:
        return {"strokes": self.strokes, "width": self.width, "height": self.height}


class _ProbeFile(BaseModel):
    about: str = ""
    probes: list[Probe] = Field(min_length=1)


def parse_probes(text: str | bytes) -> list[Probe]:
    """The probes of a probe-set file's text (PROBE_SET's JSON); ProbeError when it is not one."""
    try:
        return _ProbeFile.model_validate_json(text).probes
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the document"
        raise ProbeSetError(f"{PROBE_SET} is not a probe set: {where}: {first['msg']}") from exc


@cache
def packaged_probes() -> tuple[Probe, ...]:
    """The probe set this installed package ships (read and parsed once per process)."""
    return tuple(parse_probes(files("guessme_contracts").joinpath(PROBE_SET_RESOURCE).read_text()))


def threshold(params_text: str) -> float:
    """`promote.verify_min_accuracy` from a params.yaml text (ProbeSetError when it does not parse)."""
    try:
        raw: Any = yaml.safe_load(params_text)
    except yaml.YAMLError as exc:
        raise ProbeSetError(f"params.yaml does not parse: {type(exc).__name__}") from exc
    section = raw.get("promote") if isinstance(raw, dict) else None
    return section_threshold(section if isinstance(section, Mapping) else {})


def section_threshold(promote: Mapping[str, Any]) -> float:
    """The share of the probe set the served model must get right, from params.yaml's `promote:` section.
    A missing or out-of-range value is a ProbeSetError, never a silent default."""
    value = promote.get(THRESHOLD_KEY)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ProbeSetError(f"params.yaml promote.{THRESHOLD_KEY} must be a number in (0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ProbeScore:
    """How many probes the model `uri` recognised, against the threshold."""

    uri: str
    right: int
    total: int
    min_accuracy: float

    @property
    def accuracy(self) -> float:
        return self.right / self.total

    @property
    def passed(self) -> bool:
        return self.accuracy >= self.min_accuracy

    def summary(self) -> str:
        """One line for a log, a status file or an exception."""
        verdict = "at least" if self.passed else "below"
        return (
            f"probe set: it recognises {self.accuracy:.0%} of {self.total} drawings ({self.right} right), "
            f"{verdict} promote.{THRESHOLD_KEY} {self.min_accuracy:.0%}"
        )


Predict = Callable[[dict[str, Any]], Mapping[str, Any]]  # a /predict body -> its JSON answer


def score(predict: Predict, uri: str, probes: Sequence[Probe], min_accuracy: float) -> ProbeScore:
    """Send every probe to `predict`; each answer must come from `uri` (ProbeError otherwise, as the
    score would then be another model's)."""
    if not probes:
        raise ProbeSetError("the probe set is empty")
    right = 0
    for probe in probes:
        answer = predict(probe.drawing)
        if answer.get("model_uri") != uri:
            raise ProbeError(f"probe set: {answer.get('model_uri') or 'no model'} answered, not {uri}")
        right += int(answer.get("digit") == probe.label)
    return ProbeScore(uri, right, len(probes), min_accuracy)


def score_served(
    serve_url: str, uri: str, probes: Sequence[Probe], min_accuracy: float, timeout: float = 10.0
) -> ProbeScore:
    """`score` against the serving app's `POST {serve_url}/predict`."""
    import httpx  # only the callers that reach a server need it

    with httpx.Client(timeout=timeout) as client:

        def predict(drawing: dict[str, Any]) -> Mapping[str, Any]:
            try:
                response = client.post(f"{serve_url}/predict", json=drawing)
            except httpx.HTTPError as exc:
                raise ProbeError(f"probe set: /predict does not answer ({type(exc).__name__})") from exc
            if not response.is_success:
                body = " ".join(response.text.split())[:200]
                raise ProbeError(f"probe set: /predict answered HTTP {response.status_code}: {body}")
            try:
                answer = response.json()
            except ValueError as exc:
                raise ProbeError("probe set: /predict answered something that is not JSON") from exc
            if not isinstance(answer, dict):
                raise ProbeError("probe set: /predict answered JSON that is not an object")
            return answer

        return score(predict, uri, probes, min_accuracy)
