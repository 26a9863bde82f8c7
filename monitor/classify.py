"""Pure classification of a record diff on the shared scale, with the reasons."""

from __future__ import annotations

from monitor.diff import RecordDiff
from monitor.models import ChangeClass


def classify(diff: RecordDiff) -> tuple[ChangeClass, tuple[str, ...]]:
    """Return the class of a change and its reasons, structured changes first.

    A level that appears or disappears (``None`` on one side) is not a level change: a page
    that lost its level is a parse problem, not a relaxation.
    """
    before, after = diff.level_before, diff.level_after
    if before is not None and after is not None and before != after:
        reason = f"level {before} → {after}"
        if after < before:
            return ChangeClass.RELAXED, (reason,)
        return (ChangeClass.SEVERE if after >= 3 else ChangeClass.HEIGHTENED), (reason,)
    if diff.added or diff.removed:
        return ChangeClass.UPDATE, (_count(diff.added, "added") + ", " + _count(diff.removed, "removed"),)
    if diff.fields:
        return ChangeClass.NOISE, ("only " + ", ".join(diff.fields) + " changed",)
    return ChangeClass.NOISE, ("same lines, reordered",)


def _count(lines: tuple[str, ...], verb: str) -> str:
    return f"{len(lines)} line{'s' if len(lines) != 1 else ''} {verb}"
