"""Pure classification of a record diff on the shared scale, with the reasons.

Every structured difference between the two records is a signal with a class and a reason;
the highest escalation wins, ``relaxed`` only when nothing escalates, ``update`` when only the
text changed, ``noise`` when only metadata changed or lines moved.
"""

from __future__ import annotations

from collections.abc import Iterator

from monitor.diff import RecordDiff
from monitor.models import ChangeClass, NoticeStatus, Record, StaffDeparture

Signal = tuple[ChangeClass, str]

ESCALATION_ORDER = (
    ChangeClass.NOISE,
    ChangeClass.UPDATE,
    ChangeClass.HEIGHTENED,
    ChangeClass.SEVERE,
    ChangeClass.CRITICAL,
)
_STAFF_RANK = {StaffDeparture.NONE: 0, StaffDeparture.AUTHORIZED: 1, StaffDeparture.ORDERED: 2}
_NOTICE_CLASS = {
    NoticeStatus.SUSPENSION: ChangeClass.SEVERE,
    NoticeStatus.SURCHARGE: ChangeClass.HEIGHTENED,
    NoticeStatus.DISRUPTION: ChangeClass.HEIGHTENED,
    NoticeStatus.RESUMPTION: ChangeClass.RELAXED,
    NoticeStatus.INFO: ChangeClass.UPDATE,
}


def classify(diff: RecordDiff) -> tuple[ChangeClass, tuple[str, ...]]:
    """Return the class of a change and its reasons, most severe first."""
    signals = list(structured_signals(diff.before, diff.after))
    escalations = sorted(
        (s for s in signals if s[0] is not ChangeClass.RELAXED),
        key=lambda s: ESCALATION_ORDER.index(s[0]),
        reverse=True,
    )
    relaxations = [s for s in signals if s[0] is ChangeClass.RELAXED]
    if escalations:
        return escalations[0][0], tuple(reason for _, reason in escalations + relaxations)
    if relaxations:
        return ChangeClass.RELAXED, tuple(reason for _, reason in relaxations)
    if diff.added or diff.removed:
        return ChangeClass.UPDATE, (f"{_count(diff.added, 'added')}, {_count(diff.removed, 'removed')}",)
    if diff.meta:
        return ChangeClass.NOISE, ("only " + ", ".join(diff.meta) + " changed",)
    return ChangeClass.NOISE, ("same lines, reordered",)


def structured_signals(before: Record, after: Record) -> Iterator[Signal]:
    """The signals of the structured fields: level, flags, zones, notices.

    A level that appears or disappears (``None`` on one side) is not a level change: a page
    that lost its level is a parse problem, not a relaxation.
    """
    yield from _level(before.level, after.level)
    yield from _flag(before.leave_now, after.leave_now, "nationals urged to leave", "call to leave lifted")
    yield from _flag(before.embassy_closed, after.embassy_closed, "embassy closed", "embassy reopened")
    yield from _staff(before.staff_departure, after.staff_departure)
    yield from _zones(before, after)
    yield from _notices(before, after)


def _level(before: int | None, after: int | None, what: str = "level") -> Iterator[Signal]:
    if before is None or after is None or before == after:
        return
    reason = f"{what} {before} → {after}"
    if after < before:
        yield ChangeClass.RELAXED, reason
    elif what == "level":
        yield (ChangeClass.SEVERE if after >= 3 else ChangeClass.HEIGHTENED), reason
    else:
        yield ChangeClass.HEIGHTENED, reason


def _flag(before: bool, after: bool, raised: str, lowered: str) -> Iterator[Signal]:
    if after and not before:
        yield ChangeClass.CRITICAL, raised
    elif before and not after:
        yield ChangeClass.RELAXED, lowered


def _staff(before: StaffDeparture, after: StaffDeparture) -> Iterator[Signal]:
    if before == after:
        return
    reason = f"staff departure: {before} → {after}"
    if _STAFF_RANK[after] < _STAFF_RANK[before]:
        yield ChangeClass.RELAXED, reason
    else:
        yield (ChangeClass.CRITICAL if after is StaffDeparture.ORDERED else ChangeClass.SEVERE), reason


def _zones(before: Record, after: Record) -> Iterator[Signal]:
    """A zone raised, or a new zone stricter than the national level, is ``heightened``
    (stricter advice for part of the country); a zone lowered or lifted is ``relaxed``."""
    old = {zone.name: zone.level for zone in before.zones}
    new = {zone.name: zone.level for zone in after.zones}
    for zone in after.zones:
        if zone.name in old:
            yield from _level(old[zone.name], zone.level, f"zone {zone.name!r}")
        elif after.level is None or zone.level > after.level:
            yield ChangeClass.HEIGHTENED, f"new zone {zone.name!r} at level {zone.level} ({zone.label})"
    for zone in before.zones:
        if zone.name not in new and (after.level is None or zone.level > after.level):
            yield ChangeClass.RELAXED, f"zone {zone.name!r} (level {zone.level}) lifted"


def _notices(before: Record, after: Record) -> Iterator[Signal]:
    old = {notice.id: notice.status for notice in before.notices}
    for notice in after.notices:
        if old.get(notice.id) != notice.status:
            yield _NOTICE_CLASS[notice.status], f"{notice.status}: {notice.title}"


def _count(lines: tuple[str, ...], verb: str) -> str:
    return f"{len(lines)} line{'s' if len(lines) != 1 else ''} {verb}"
