"""Pure comparison of two snapshots of one record."""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from monitor.models import Record

# Fields that describe the record rather than the advice: a change in them alone is metadata.
_META_FIELDS = ("title", "url", "published_at", "updated_at", "level_label", "country", "extra")
# What a decoder puts in place of bytes it cannot read: one or more per character lost.
_UNDECODABLE = re.compile("\ufffd+")
_MAX_ALIGNMENTS = 64  # beyond this many ways to line the texts up, call it a change


@dataclass(frozen=True)
class RecordDiff:
    """What differs between ``before`` and ``after``.

    ``added`` / ``removed`` are the text lines present in one version and not the other (as
    multisets, so moving a line is neither); ``unified`` is a readable diff by section;
    ``meta`` names the metadata fields that changed. The structured fields (level, flags,
    zones, notices) are compared by the classifier on the records themselves.
    """

    before: Record
    after: Record
    added: tuple[str, ...]
    removed: tuple[str, ...]
    unified: str
    meta: tuple[str, ...]

    @property
    def level_before(self) -> int | None:
        return self.before.level

    @property
    def level_after(self) -> int | None:
        return self.after.level


def diff_records(before: Record, after: Record) -> RecordDiff | None:
    """None when both records have the same content, or when ``after`` is ``before`` with some
    characters lost to bytes that could not be decoded (see :func:`only_undecodable`);
    otherwise the differences."""
    old, new = before.canonical(), after.canonical()
    if old == new or only_undecodable(old, new):
        return None
    old_lines, new_lines = _lines(before), _lines(after)
    return RecordDiff(
        before=before,
        after=after,
        added=_surplus(new_lines, old_lines),
        removed=_surplus(old_lines, new_lines),
        unified=_unified(before, after),
        meta=tuple(name for name in _META_FIELDS if getattr(before, name) != getattr(after, name)),
    )


def only_undecodable(old: str, new: str) -> bool:
    """True when ``new`` is ``old`` with some characters replaced by U+FFFD, and nothing else.

    A page that arrives with a few bytes that are not valid in its encoding (a damaged answer, a
    mis-encoded fragment) reads the same with those characters lost; recording that as a change
    would alert on nothing, and again when the page is whole. A run of n replacement characters
    stands for 1 to n characters of ``old`` (a broken multi-byte character gives one per byte).
    """
    pieces = _UNDECODABLE.split(new)
    if len(pieces) == 1 or old == new or not old.startswith(pieces[0]):
        return False
    # Where in ``old`` the text after each run may start; a set, not a regular expression, so
    # that runs that could stand for several lengths never make the search exponential.
    ends = {len(pieces[0])}
    for run, piece in zip(_UNDECODABLE.findall(new), pieces[1:], strict=True):
        ends = {
            start + lost + len(piece)
            for start in ends
            for lost in range(1, len(run) + 1)
            if old.startswith(piece, start + lost)
        }
        if not ends or len(ends) > _MAX_ALIGNMENTS:
            return False
    return len(old) in ends


def _surplus(lines: list[str], other: list[str]) -> tuple[str, ...]:
    """The lines of ``lines`` not matched by an equal line of ``other``, in order."""
    surplus = Counter(lines) - Counter(other)
    kept = []
    for line in lines:
        if surplus[line] > 0:
            surplus[line] -= 1
            kept.append(line)
    return tuple(kept)


def _lines(record: Record) -> list[str]:
    return [line for section in record.sections for line in section.text.splitlines() if line.strip()]


def _unified(before: Record, after: Record) -> str:
    old = {s.name: s.text.splitlines() for s in before.sections}
    new = {s.name: s.text.splitlines() for s in after.sections}
    chunks: list[str] = []
    for name in dict.fromkeys([*old, *new]):
        lines = difflib.unified_diff(old.get(name, []), new.get(name, []), name, name, n=1, lineterm="")
        chunks.extend(lines)
    return "\n".join(chunks)


def publication_time(before: Record, after: Record) -> datetime | None:
    """The publisher's own time for the change from ``before`` to ``after``, or None.

    A ministry's "updated" (else "published") date counts only when it moved, else it dates an
    earlier edit; for a carrier record, the newest date among its new or re-worded notices.
    """
    stamp_after = after.updated_at or after.published_at
    if stamp_after is not None and stamp_after != (before.updated_at or before.published_at):
        return stamp_after
    old = {(n.id, n.status, n.title) for n in before.notices}
    dated = [n.published_at for n in after.notices if n.published_at and (n.id, n.status, n.title) not in old]
    return max(dated, default=None)
