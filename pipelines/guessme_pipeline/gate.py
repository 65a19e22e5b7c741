"""The promotion gate: a candidate replaces the deployed model only if it is better by a margin.

Both models are evaluated on the same held-out test set (and on player drawings when there are enough),
so the comparison does not depend on metrics logged against older data.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PRIMARY = "test_accuracy"
PLAYER = "player_accuracy"


@dataclass(frozen=True)
class GateParams:
    """`promote:` in params.yaml, the only place these values are written."""

    min_improvement: float  # candidate test accuracy must beat the deployed one by this much
    min_accuracy: float  # absolute floor, also when nothing is deployed yet
    max_player_drop: float  # player-drawing accuracy may not fall by more than this

    @classmethod
    def from_params_file(cls, path: Path) -> "GateParams":
        return cls.from_params_text(path.read_text(), str(path))

    @classmethod
    def from_params_text(cls, text: str, source: str) -> "GateParams":
        """The gate's keys of params.yaml's `promote:` (`source` names the file in errors). An unknown
        key and a missing one are both errors: a deleted threshold must not fall back to a default."""
        raw: Any = yaml.safe_load(text) or {}
        section = raw.get("promote") if isinstance(raw, dict) else None
        if not isinstance(section, dict):
            raise ValueError(f"{source}: promote must be a mapping")
        from guessme_pipeline.verify import VerifyParams  # the section's verification keys

        VerifyParams.from_promote_section(section)  # validates them
        unknown = set(section) - set(cls.__dataclass_fields__) - set(VerifyParams.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{source}: promote: unknown key(s): {', '.join(sorted(unknown))}")
        missing = [k for k in cls.__dataclass_fields__ if k not in section]
        if missing:
            raise ValueError(f"{source}: promote: missing key(s): {', '.join(missing)}")
        return cls(**{k: float(section[k]) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"promote": self.promote, "reason": self.reason}


def decide(
    candidate: Mapping[str, float], deployed: Mapping[str, float] | None, params: GateParams
) -> Decision:
    """Compare metrics measured on the same data; `deployed` is None when nothing is deployed yet."""
    if PRIMARY not in candidate:
        return Decision(False, f"candidate has no {PRIMARY}")
    acc = candidate[PRIMARY]
    if acc < params.min_accuracy:
        return Decision(False, f"{PRIMARY} {acc:.4f} is below the floor {params.min_accuracy:.4f}")
    if deployed is None:
        return Decision(True, f"nothing deployed; {PRIMARY} {acc:.4f} clears the floor")
    needed = deployed[PRIMARY] + params.min_improvement
    if acc < needed:
        return Decision(
            False,
            f"{PRIMARY} {acc:.4f} does not beat the deployed {deployed[PRIMARY]:.4f} "
            f"by {params.min_improvement:.4f}",
        )
    if PLAYER in candidate and PLAYER in deployed:
        floor = deployed[PLAYER] - params.max_player_drop
        if candidate[PLAYER] < floor:
            return Decision(
                False,
                f"{PLAYER} {candidate[PLAYER]:.4f} falls below the deployed {deployed[PLAYER]:.4f} "
                f"minus {params.max_player_drop:.4f}",
            )
    return Decision(True, f"{PRIMARY} {acc:.4f} beats the deployed {deployed[PRIMARY]:.4f}")
