"""One change as the report's change list shows it (pure): times, levels, reasons with their
quoted evidence, a diff excerpt with the changed words marked, the official link and how its
alerts went.

Every text stays plain text here; the template escapes it. A link is only made for an http(s)
address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from difflib import SequenceMatcher
from itertools import islice

from monitor.alerts.render import changed_lines, format_utc
from monitor.display import one_line, safe_href, shorten
from monitor.health import duration_text
from monitor.report.history import ChangeEntry
from monitor.report.wording import level_tone, notice_tone, notice_word

DIFF_LINES = 10
LINE_CHARS = 400  # a changed line is cut to about this
CONTEXT_CHARS = 70  # unchanged text kept on each side of the changed words
REASON_CHARS = 600
TITLE_CHARS = 300
# Word-by-word comparison costs the product of the two lines' lengths; longer pairs are shown whole.
MAX_WORDS = 800
# Two lines this different are a removal and an addition, not an edit worth marking word by word.
MIN_LIKENESS = 0.4

_WORD = re.compile(r"\S+\s*|\s+")
_QUOTE_START = ": “"


@dataclass(frozen=True)
class LevelText:
    """A level as shown: ``value`` "1"–"4" or "—", the publisher's ``label``, a colour ``tone``."""

    value: str
    label: str | None
    tone: str


@dataclass(frozen=True)
class Reason:
    """A classifier reason: its ``label``, and the sentence it quotes as evidence, if any."""

    label: str
    quote: str | None


@dataclass(frozen=True)
class Piece:
    """Part of a changed line; ``changed``: the words that differ from the line it replaced."""

    text: str
    changed: bool


@dataclass(frozen=True)
class DiffLine:
    added: bool
    pieces: tuple[Piece, ...]


@dataclass(frozen=True)
class ChangeRow:
    """A :class:`ChangeEntry` as display strings (UTC times, human durations)."""

    id: int
    change_class: str
    badge: str
    source_id: str
    publisher: str
    detected: str
    published: str
    before: LevelText | None
    after: LevelText | None
    notice: str | None
    notice_tone: str
    title: str
    url: str
    href: str | None
    reasons: tuple[Reason, ...]
    diff: tuple[DiffLine, ...]
    more_lines: int
    sent: int
    failed: int
    pending: int
    detection_delay: str | None
    delivery_delay: str | None


def change_row(change: ChangeEntry) -> ChangeRow:
    """What the change list shows about ``change``."""
    excerpt = tuple(islice(diff_excerpt(change.diff), DIFF_LINES))
    changed = sum(1 for _ in changed_lines(change.diff))
    url = one_line(change.url)
    notice = change.notice
    return ChangeRow(
        id=change.id,
        change_class=change.change_class.value,
        badge=change.change_class.value.upper(),
        source_id=change.source_id,
        publisher=one_line(change.publisher),
        detected=format_utc(change.detected_at),
        published=format_utc(change.published_at) if change.published_at else "—",
        before=_level(change.level_before, change.label_before),
        after=_level(change.level_after, change.label_after),
        notice=f"{notice_word(notice.status)}: {shorten(one_line(notice.title), TITLE_CHARS, at_word=False)}"
        if notice
        else None,
        notice_tone=notice_tone(notice.status if notice else None),
        title=shorten(one_line(change.title), TITLE_CHARS, at_word=False),
        url=url,
        href=safe_href(url),
        reasons=tuple(reason(text) for text in change.reasons if text.strip()),
        diff=excerpt,
        more_lines=changed - len(excerpt),
        sent=change.alerts_sent,
        failed=change.alerts_failed,
        pending=change.alerts_pending,
        detection_delay=_duration(change.detection_delay),
        delivery_delay=_duration(change.delivery_delay),
    )


def reason(text: str) -> Reason:
    """``label: “quoted sentence”`` split into its label and quote; any other text is a label."""
    cleaned = shorten(one_line(text), REASON_CHARS, at_word=False)
    label, found, quote = cleaned.partition(_QUOTE_START)
    if not found:
        return Reason(cleaned, None)
    return Reason(label, quote.removesuffix("”") or None)


def diff_excerpt(diff: str) -> Iterator[DiffLine]:
    """The changed lines of a unified diff, one :class:`DiffLine` each, lazily. In a run of
    removed lines followed by added ones, the n-th added line is taken as the edit of the n-th
    removed one and follows it; when the two resemble each other, both show only the words
    around what changed, marked."""
    removed: list[str] = []
    added: list[str] = []
    for sign, text in changed_lines(diff):
        if sign == "-" and added:
            yield from _edits(removed, added)
            removed, added = [], []
        (added if sign == "+" else removed).append(text)
    yield from _edits(removed, added)


def _level(level: int | None, label: str | None) -> LevelText | None:
    label = shorten(one_line(label or ""), TITLE_CHARS, at_word=False) or None
    if level is None and label is None:
        return None
    return LevelText(str(level) if level is not None else "—", label, level_tone(level))


def _duration(span: timedelta | None) -> str | None:
    return duration_text(span) if span is not None else None


def _edits(removed: Sequence[str], added: Sequence[str]) -> Iterator[DiffLine]:
    for old, new in zip(removed, added, strict=False):
        yield from _edit(old, new)
    yield from (_whole(text, added=False) for text in removed[len(added) :])
    yield from (_whole(text, added=True) for text in added[len(removed) :])


def _whole(text: str, *, added: bool) -> DiffLine:
    """A line added or removed as a whole: no word in it is marked on its own."""
    return DiffLine(added, (Piece(shorten(text, LINE_CHARS, at_word=False), False),))


def _edit(old: str, new: str) -> tuple[DiffLine, DiffLine]:
    """A removed line and the added line that replaced it, with the differing words marked."""
    whole = _whole(old, added=False), _whole(new, added=True)
    old_words, new_words = _WORD.findall(old), _WORD.findall(new)
    if old == new or len(old_words) + len(new_words) > MAX_WORDS:
        return whole
    matcher = SequenceMatcher(None, old_words, new_words, autojunk=False)
    # quick_ratio() is an upper bound of ratio() that spares comparing lines that cannot be alike.
    if matcher.quick_ratio() < MIN_LIKENESS or matcher.ratio() < MIN_LIKENESS:
        return whole
    before: list[Piece] = []
    after: list[Piece] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        same = tag == "equal"
        if i2 > i1:
            before.append(Piece("".join(old_words[i1:i2]), not same))
        if j2 > j1:
            after.append(Piece("".join(new_words[j1:j2]), not same))
    return DiffLine(False, _condensed(before)), DiffLine(True, _condensed(after))


def _condensed(pieces: Sequence[Piece]) -> tuple[Piece, ...]:
    """``pieces`` with long unchanged stretches cut to their ends near a change, at most about
    :data:`LINE_CHARS` in all."""
    kept: list[Piece] = []
    total = 0
    for index, piece in enumerate(pieces):
        text = piece.text if piece.changed else _context(piece.text, index > 0, index < len(pieces) - 1)
        if total + len(text) > LINE_CHARS:
            kept.append(Piece(shorten(text, max(2, LINE_CHARS - total), at_word=False), piece.changed))
            break
        kept.append(Piece(text, piece.changed))
        total += len(text)
    return tuple(kept)


def _context(text: str, after_change: bool, before_change: bool) -> str:
    """Unchanged ``text`` reduced to the words next to the changes around it."""
    if len(text) <= 2 * CONTEXT_CHARS + 10:
        return text
    start = text[:CONTEXT_CHARS].rsplit(" ", 1)[0] + " " if after_change else ""
    end = " " + text[-CONTEXT_CHARS:].split(" ", 1)[-1] if before_change else ""
    return f"{start}…{end}"
