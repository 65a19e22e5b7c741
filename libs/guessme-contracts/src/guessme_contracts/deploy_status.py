"""Deploy health: does the serving app answer with the model an environment's commit names?

Argo CD's words (Healthy / Progressing / Degraded), decided from what the serving app's `/model` says,
never from whether an apply was accepted: a commit is Healthy only when the app serves its URI (and,
in the local sync, that model passes the probe set: guessme_contracts.probes). The local sync
(localdev) writes its verdict to a small JSON status file (`status_path`); `make status` and the
pipeline's `verify` task read it, so the file's schema is a contract between them.
"""

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from guessme_contracts.layout import Layout
from guessme_contracts.overlay import check_env_name
from guessme_contracts.probes import ProbeScore

HEALTHY, PROGRESSING, DEGRADED = "Healthy", "Progressing", "Degraded"


@dataclass(frozen=True)
class Served:
    """What GET /model answered (apps/guessme-serve: ModelInfo)."""

    model_uri: str  # the model that answers ("" when none is loaded)
    version: str | None
    last_error: str | None  # the last failed load, if any: "<time> loading <uri>: <error>"

    @classmethod
    def from_model_info(cls, info: dict[str, Any]) -> "Served":
        version = info.get("model_version")
        return cls(
            str(info.get("model_uri") or ""),
            None if version is None else str(version),
            info.get("last_error"),
        )

    def failed_to_load(self, uri: str) -> bool:
        # guessme_serve.model_holder.ModelHolder.set_uri words a failed load this way; the old model
        # (if any) keeps answering, so /model's model_uri alone cannot tell a failure from a slow load.
        return bool(self.last_error) and f" loading {uri}: " in str(self.last_error)


@dataclass(frozen=True)
class Observation:
    """One look at the serving app: what /model said, or why there was no answer."""

    served: Served | None
    why: str = ""  # when served is None
    failed: bool = False  # the app itself failed (e.g. Serve's DEPLOY_FAILED), not merely not up yet
    # Why the app has not settled though /model answers, e.g. Serve still rolling a config out replica
    # by replica: the replica that answered may be ahead of the others ("" when settled).
    unsettled: str = ""


@dataclass(frozen=True)
class Health:
    status: str
    reason: str = ""


def assess(committed_uri: str, seen: Observation) -> Health:
    """The health of a deploy of `committed_uri` from one look at the app ("" committed: no model).

    No answer from /model is Progressing (the caller's deadline turns it Degraded), unless the app
    itself reported a failure. A failed load of the committed URI is Degraded at once.
    """
    served = seen.served
    if served is None:
        return Health(
            DEGRADED if seen.failed else PROGRESSING, seen.why or "the app's /model does not answer yet"
        )
    if served.model_uri == committed_uri and (served.version is not None or not committed_uri):
        if seen.unsettled:
            return Health(PROGRESSING, f"{committed_uri or 'no model'} answers; {seen.unsettled}")
        return Health(
            HEALTHY, f"serving {committed_uri}" if committed_uri else "no model committed; none served"
        )
    if committed_uri and served.failed_to_load(committed_uri):
        error = str(served.last_error).split(f" loading {committed_uri}: ", 1)[1]
        return Health(DEGRADED, f"load error: {committed_uri}: {one_line(error)}")
    still = served.model_uri or "no model"
    return Health(PROGRESSING, f"loading {committed_uri or 'no model'}; {still} answers meanwhile")


def one_line(text: str, limit: int = 300) -> str:
    """A reason fit for one log line: first line of a multi-line error, bounded."""
    first = " ".join(str(text).strip().splitlines()[:1]) or "(no message)"
    return first if len(first) <= limit else first[: limit - 3] + "..."


@dataclass
class DeployStatus:
    """One environment's deploy, as the local sync last saw it (the status file's schema)."""

    env: str
    branch: str
    commit: str  # the branch head the sync is reconciling to
    model_uri: str  # committed at `commit` ("" for none; the raw text when it was refused)
    health: str
    reason: str
    grace_s: float  # how long a commit may stay Progressing before it is Degraded
    synced_at: float  # wall-clock time (epoch s) the sync took up `commit`
    checked_at: float  # wall-clock time of the last look at the app
    applied_commit: str | None = None  # the last commit whose config reached Ray Serve
    served_uri: str | None = None  # what /model answered at checked_at (None: no answer)
    apply_s: float | None = None  # render + apply of `commit`
    healthy_after_s: float | None = None  # from taking up `commit` to Healthy
    # The probe set as the sync scored the served `model_uri` (None: not scored, e.g. no model committed)
    probe_right: int | None = None
    probe_total: int | None = None
    probe_min_accuracy: float | None = None  # params.yaml promote.verify_min_accuracy at `commit`
    pid: int = field(default_factory=os.getpid)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def record_probe(self, score: ProbeScore | None) -> None:
        self.probe_right = score.right if score else None
        self.probe_total = score.total if score else None
        self.probe_min_accuracy = score.min_accuracy if score else None

    def probe_score(self) -> ProbeScore | None:
        """The probe set's score of `model_uri` as the sync recorded it, if it scored one."""
        if self.probe_right is None or not self.probe_total or self.probe_min_accuracy is None:
            return None
        return ProbeScore(self.model_uri, self.probe_right, self.probe_total, self.probe_min_accuracy)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "DeployStatus":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def status_path(layout: Layout, env: str) -> Path:
    """Where the local sync of `env` keeps its status: the clone's run folder (guessme_contracts.layout)."""
    return layout.run / f"sync-{check_env_name(env)}.json"


def write_status(path: Path, status: DeployStatus) -> None:
    """Atomically: a reader sees the previous status or this one, never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(status.as_dict(), handle, indent=2)
    os.replace(tmp, path)


def read_status(path: Path) -> DeployStatus | None:
    try:
        return DeployStatus.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
