"""Rollback by commit: revert one promotion commit, and only that one.

The revert commit is what `git revert <promotion>` makes (same tree, git's own message form, plus the
reason), written by promotion's own plumbing, lock and compare-and-swap
(guessme_pipeline.promote.commit_overlay_edit), so the developer's index and other files are never
touched and concurrent promotions serialise.
It is idempotent: when the branch no longer deploys what the promotion committed (already reverted, or
superseded by a later promotion), nothing is committed.
"""

from dataclasses import dataclass
from pathlib import Path

from guessme_contracts.git import Git
from guessme_contracts.overlay import overlay_path
from guessme_pipeline.promote import (
    Committed,
    OverlayEdit,
    PromotionError,
    changed_paths,
    commit_overlay_edit,
    target_branch,
)


@dataclass(frozen=True)
class RevertResult:
    committed: bool
    commit: str  # the revert commit, or the head that made one unnecessary
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"reverted": self.committed, "commit": self.commit, "detail": self.detail}


def revert_message(git: Git, promotion: str, reason: str) -> str:
    subject = git.run("log", "-1", "--format=%s", promotion)
    return f'Revert "{subject}"\n\nThis reverts commit {promotion}.\n\nReason: {reason}\n'


def revert_promotion(
    repo: Path,
    env: str,
    promotion: str,
    reason: str,
    branch: str | None = None,
    lock_timeout: float = 120.0,
    attempts: int = 5,
) -> RevertResult:
    """Revert `promotion` (a commit that changed only environments/<env>/model.env) on `branch`."""
    git = Git(repo)
    path = overlay_path(env)
    branch = target_branch(git, branch, "roll back")
    promotion = git.rev(promotion)
    if changed_paths(repo, promotion) != [path]:
        raise PromotionError(f"{promotion[:12]} is not a promotion of {path}: refusing to revert it")
    promoted, before = git.show(promotion, path), git.show(f"{promotion}^", path)

    def plan(head: str) -> OverlayEdit | RevertResult:
        if not git.ok("merge-base", "--is-ancestor", promotion, head):
            raise PromotionError(f"{promotion[:12]} is not on {branch}")
        current = git.show(head, path)
        if current != promoted:
            detail = "already reverted" if current == before else "superseded by a later change"
            return RevertResult(False, head, f"{path} at {head[:12]} no longer deploys it: {detail}")
        message = revert_message(git, promotion, reason)
        return OverlayEdit(current, before, message, f"revert {promotion[:12]}: {reason[:80]}")

    done = commit_overlay_edit(git, branch, path, plan, lock_timeout, attempts)
    if isinstance(done, Committed):
        return RevertResult(True, done.commit, f"reverted {promotion[:12]}")
    return done
