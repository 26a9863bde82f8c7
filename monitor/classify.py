"""Pure classification of a change on the shared scale, with the reasons.

Two kinds of signal, each a class and a reason:

* **structured**: the records' own fields changed (level, leave-now, staff departure, embassy,
  zones, carrier notices) — :func:`structured_signals`;
* **text**: the prose says something new, or no longer says it — :mod:`monitor.textsignals`,
  with the phrase rules of :mod:`monitor.rules`; the reason quotes the sentence.

The highest escalation wins (``critical`` > ``severe`` > ``heightened`` > ``update``);
``relaxed`` only when nothing escalates; without any signal, ``update`` when sentences with
something to say were added or removed, ``noise`` otherwise (dates, "still current" lines,
whitespace, reordering, typo fixes, tracking parameters, other countries' notices). A text
signal saying what a structured one already says (same class, same topic: the level, the call
to leave, a notice...) is dropped. Reasons are ordered by class, most severe first, then the
relaxations; within a class structured reasons come before quoted sentences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError, field_validator

from monitor.diff import RecordDiff
from monitor.errors import MonitorError
from monitor.models import ChangeClass, NoticeStatus, Record, StaffDeparture
from monitor.rules import KINDS, Kind, RuleSet
from monitor.textsignals import TextResult, text_signals

Signal = tuple[ChangeClass, str]
_Topical = tuple[ChangeClass, str, str]  # a structured signal and the field it is about

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


class InputError(MonitorError):
    """Input given to ``monitor classify`` is unusable; the message names the line."""

    exit_code = 2


@dataclass(frozen=True)
class TextClassification:
    """The class of a change between two texts, its reasons and the levels the texts state."""

    change_class: ChangeClass
    reasons: tuple[str, ...]
    level_before: int | None
    level_after: int | None


def classify(diff: RecordDiff, rules: RuleSet | None = None) -> tuple[ChangeClass, tuple[str, ...]]:
    """Return the class of a change and its reasons, most severe first (built-in phrase rules,
    or ``rules`` from :func:`monitor.rules.load_rules`)."""
    structured = list(_structured(diff.before, diff.after))
    text = _record_text(diff, rules)
    said = {(change_class, topic) for change_class, _, topic in structured}
    signals = [(change_class, reason) for change_class, reason, _ in structured]
    signals += [(s.change_class, s.reason) for s in text.signals if (s.change_class, s.topic) not in said]
    decided = _decide(signals)
    if decided is not None:
        return decided
    if diff.added or diff.removed:
        if not text.substantive:
            return ChangeClass.NOISE, (text.noise_reason,)
        return ChangeClass.UPDATE, (f"{_count(diff.added, 'added')}, {_count(diff.removed, 'removed')}",)
    if diff.meta:
        return ChangeClass.NOISE, ("only " + ", ".join(diff.meta) + " changed",)
    return ChangeClass.NOISE, ("same lines, reordered",)


def classify_texts(
    kind: Kind, country: str | None, before: str, after: str, *, rules: RuleSet | None = None
) -> TextClassification:
    """Classify the change from ``before`` to ``after`` (plain text or HTML) of a source of
    ``kind`` (``ministry`` or ``carrier``) about ``country`` (ISO alpha-2; for carriers, only
    what concerns it counts; None: everything does), with the built-in phrase rules or
    ``rules`` (see :func:`monitor.rules.load_rules`). Raises ValueError for an unknown kind."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    text = text_signals(kind, country.upper() if country else None, before, after, rules)
    decided = _decide([(s.change_class, s.reason) for s in text.signals])
    if decided is None:
        if text.substantive:
            counts = f"{_count(text.added, 'added')}, {_count(text.removed, 'removed')}"
            decided = ChangeClass.UPDATE, (counts,)
        else:
            decided = ChangeClass.NOISE, (text.noise_reason,)
    return TextClassification(decided[0], decided[1], text.level_before, text.level_after)


def text_supports_level_change(diff: RecordDiff, rules: RuleSet | None = None) -> bool:
    """True when the prose backs the records' level change: the text's own level moved the same
    way, or the text says something critical (a call to leave, an ordered departure...).

    For the pipeline's guard against one-poll level glitches (a feed dropping to level 1 for a
    day while its text still says "Do not travel")."""
    text = _record_text(diff, rules)
    if any(signal.change_class is ChangeClass.CRITICAL for signal in text.signals):
        return True
    before, after = diff.level_before, diff.level_after
    if before is None or after is None or before == after:
        return False
    return text.level_direction == (1 if after > before else -1)


class BatchItem(BaseModel):
    """One line of a ``monitor classify --batch`` file; other keys (``expected``...) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: StrictStr | StrictInt
    kind: Kind
    country: str | None = None
    before: StrictStr
    after: StrictStr

    @field_validator("country")
    @classmethod
    def _country_code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError("expected a two-letter ISO country code or null")
        return value.upper()


def read_batch(path: Path) -> list[BatchItem]:
    """Every item of a JSON Lines file (blank lines skipped), all checked before any is used.

    Raises :class:`InputError` naming the file and the line of the first bad one."""
    items: list[BatchItem] = []
    # Lines end at line feeds only: JSON strings may hold U+2028 and the other separators
    # that str.splitlines() would cut at.
    for number, line in enumerate(read_input(path).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            data: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON: {exc.msg} (column {exc.colno})") from exc
        except RecursionError:
            raise InputError(f"{where}: not valid JSON: nested too deeply") from None
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a JSON object with id, kind, country, before, after")
        try:
            items.append(BatchItem.model_validate(data))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            raise InputError(f"{where}: {field}: {error['msg']}") from exc
    return items


def read_input(path: Path) -> str:
    """A UTF-8 text file; :class:`InputError` when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc


def _record_text(diff: RecordDiff, rules: RuleSet | None) -> TextResult:
    """The text signals of a record diff. A carrier record holds only the notices about its
    country already, one section per notice (blank lines keep notices apart)."""
    if diff.before.notices or diff.after.notices:
        before, after = _joined(diff.before, "\n\n"), _joined(diff.after, "\n\n")
        return text_signals("carrier", None, before, after, rules)
    country = diff.after.country or diff.before.country
    return text_signals("ministry", country, diff.before.text, diff.after.text, rules)


def _joined(record: Record, separator: str) -> str:
    return separator.join(section.text for section in record.sections)


def _decide(signals: list[Signal]) -> tuple[ChangeClass, tuple[str, ...]] | None:
    """The class and reasons when there is a signal: the highest escalation, else relaxed."""
    escalations = sorted(
        (s for s in signals if s[0] is not ChangeClass.RELAXED),
        key=lambda s: ESCALATION_ORDER.index(s[0]),
        reverse=True,
    )
    relaxations = [s for s in signals if s[0] is ChangeClass.RELAXED]
    if escalations:
        return escalations[0][0], tuple(dict.fromkeys(reason for _, reason in escalations + relaxations))
    if relaxations:
        return ChangeClass.RELAXED, tuple(dict.fromkeys(reason for _, reason in relaxations))
    return None


def structured_signals(before: Record, after: Record) -> Iterator[Signal]:
    """The signals of the structured fields: level, flags, zones, notices.

    A level that appears or disappears (``None`` on one side) is not a level change: a page
    that lost its level is a parse problem, not a relaxation.
    """
    return ((change_class, reason) for change_class, reason, _ in _structured(before, after))


def _structured(before: Record, after: Record) -> Iterator[_Topical]:
    def about(topic: str, signals: Iterable[Signal]) -> Iterator[_Topical]:
        return ((change_class, reason, topic) for change_class, reason in signals)

    yield from about("level", _level(before.level, after.level))
    leave = _flag(before.leave_now, after.leave_now, "nationals urged to leave", "call to leave lifted")
    yield from about("leave_now", leave)
    embassy = _flag(before.embassy_closed, after.embassy_closed, "embassy closed", "embassy reopened")
    yield from about("embassy_closed", embassy)
    yield from about("staff_departure", _staff(before.staff_departure, after.staff_departure))
    yield from about("zone", _zones(before, after))
    yield from about("notice", _notices(before, after))


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


def _count(lines: tuple[str, ...] | int, verb: str) -> str:
    if isinstance(lines, int):
        return f"{lines} sentence{'s' if lines != 1 else ''} {verb}"
    return f"{len(lines)} line{'s' if len(lines) != 1 else ''} {verb}"
