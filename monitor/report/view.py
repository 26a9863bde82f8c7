"""A :class:`History` turned into what the HTML report shows (pure): the header, the current-state
matrix, one section per country (timeline and changes, newest first) and the sources' health.

Texts stay plain; the template escapes them. Each country shows its newest :data:`LIVE_ROWS`
changes and keeps the older ones in chunks of :data:`CHUNK_ROWS`, which the page only builds when
they are asked for, so a history of thousands of changes opens quickly.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.alerts.render import SEVERITY, country_name, format_utc
from monitor.display import one_line, safe_href, shorten
from monitor.health import duration_text
from monitor.models import ChangeClass
from monitor.report.chart import Axis, Chart, Series, timeline
from monitor.report.history import ChangeEntry, History, Point, SourceView
from monitor.report.rows import ChangeRow, change_row
from monitor.report.wording import day_text, level_tone, notice_tone, notice_word, utc

LIVE_ROWS = 25
CHUNK_ROWS = 100
HEALTH_EVENTS = 50
ERROR_CHARS = 500
CELL_LABEL_CHARS = 120
# Step lines are told apart from the class colours of the markers and the level bands.
PALETTE = ("#2563eb", "#7c3aed", "#0d9488", "#db2777", "#92400e", "#4338ca", "#0891b2", "#111827")
_ALERT_ORDER = ("sent", "failed", "pending")
_ANCHOR_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Column:
    """A source as a column of the matrix, a filter and a line or lane of the charts."""

    id: str
    publisher: str
    kind: str
    colour: str
    leveled: bool
    changes: int


@dataclass(frozen=True)
class Cell:
    """What one source says about one country now: ``value`` (a level or a notice's word), the
    publisher's ``label`` and ``when`` it last changed."""

    tone: str
    value: str
    label: str | None
    when: str


@dataclass(frozen=True)
class MatrixRow:
    """A watched country: a cell per column, None where the source said nothing about it."""

    code: str
    name: str
    anchor: str
    cells: tuple[Cell | None, ...]


@dataclass(frozen=True)
class Section:
    """A country (or, without ``code``, the changes of no watched country): its timeline and
    its changes, newest first, the first :data:`LIVE_ROWS` live and the rest in chunks."""

    anchor: str
    heading: str
    code: str | None
    chart: Chart | None
    legend: tuple[Column, ...]
    live: tuple[ChangeRow, ...]
    older: tuple[tuple[ChangeRow, ...], ...]
    total: int


@dataclass(frozen=True)
class HealthRow:
    """A source's health as the health table shows it."""

    source_id: str
    publisher: str
    kind: str
    href: str | None
    active: bool
    interval: str | None
    healthy: bool
    reason: str | None
    since: str | None
    last_success: str
    last_check: str
    outcome: str | None
    error: str | None
    failures: int
    blocked: bool


@dataclass(frozen=True)
class EventRow:
    """A source becoming unhealthy or recovering."""

    at: str
    source: str
    recovered: bool
    reason: str | None


@dataclass(frozen=True)
class ClassOption:
    """A change class with how many changes have it."""

    value: str
    count: int


@dataclass(frozen=True)
class Page:
    """Everything the report template shows."""

    generated: str
    window: str
    countries_asked: str | None
    total: int
    countries: int
    classes: tuple[ClassOption, ...]
    columns: tuple[Column, ...]
    matrix: tuple[MatrixRow, ...]
    sections: tuple[Section, ...]
    health: tuple[HealthRow, ...]
    events: tuple[EventRow, ...]
    alerts: tuple[tuple[str, int], ...]
    live_rows: int = LIVE_ROWS
    chunk_rows: int = CHUNK_ROWS


def page_of(history: History) -> Page:
    """What the report shows about ``history``: its changes detected in its window, and the
    state at the window's end."""
    history = _windowed(history)
    index = _index(history)
    sections = [_section(code, index) for code in history.countries]
    if other := index.changes.get(None):
        sections.append(_other(other, index.rows))
    counts = Counter(change.change_class for change in history.changes)
    return Page(
        generated=format_utc(history.generated_at),
        window=_window_text(history),
        countries_asked=", ".join(_place(code) for code in history.window.countries) or None,
        total=len(history.changes),
        countries=len(history.countries),
        classes=tuple(ClassOption(c.value, counts[c]) for c in SEVERITY),
        columns=index.columns,
        matrix=tuple(_matrix_row(code, index) for code in history.countries),
        sections=tuple(sections),
        health=tuple(_health(source) for source in history.sources),
        events=_events(history),
        alerts=_alerts(history.alerts),
    )


def anchor(code: str) -> str:
    """The id of a country's section: "country-ML"."""
    return "country-" + _ANCHOR_UNSAFE.sub("_", code)


def _windowed(history: History) -> History:
    since, until = history.window.since, history.window.until
    if since is None and until is None:
        return history
    start, end = utc(since) if since else None, utc(until) if until else None
    changes = tuple(
        change
        for change in history.changes
        if (start is None or utc(change.detected_at) >= start)
        and (end is None or utc(change.detected_at) <= end)
    )
    return replace(history, changes=changes)


@dataclass(frozen=True)
class _Index:
    """The history sorted out once for every section: the changes per country (newest first;
    None: of no watched country), the points per country and source (oldest first), each
    change's row, and the time axis and end of the window."""

    columns: tuple[Column, ...]
    changes: dict[str | None, list[ChangeEntry]]
    points: dict[str, dict[str, list[Point]]]
    rows: dict[int, ChangeRow]
    axis: Axis
    until: datetime | None


def _index(history: History) -> _Index:
    return _Index(
        columns=_columns(history),
        changes=_changes_by_country(history),
        points=_points_by_country(history),
        rows={change.id: change_row(change) for change in history.changes},
        axis=_axis(history),
        until=utc(history.window.until) if history.window.until else None,
    )


def _columns(history: History) -> tuple[Column, ...]:
    """Every source in the history: the configured ones first, then any only its data names."""
    leveled = {p.source_id for p in history.points if p.level is not None}
    leveled |= {
        c.source_id for c in history.changes if c.level_before is not None or c.level_after is not None
    }
    counts = Counter(change.source_id for change in history.changes)
    named = {s.id: (s.publisher, s.kind) for s in history.sources}
    for change in history.changes:
        named.setdefault(change.source_id, (change.publisher, change.kind))
    for point in history.points:
        named.setdefault(point.source_id, (point.source_id, ""))
    return tuple(
        Column(id_, one_line(publisher) or id_, kind, PALETTE[i % len(PALETTE)], id_ in leveled, counts[id_])
        for i, (id_, (publisher, kind)) in enumerate(named.items())
    )


def _axis(history: History) -> Axis:
    """From the window's start (else the first point or change) to its end (else now)."""
    end = utc(
        min(history.window.until, history.generated_at) if history.window.until else history.generated_at
    )
    moments = [p.at for p in history.points[:1]] + [c.detected_at for c in history.changes[:1]]
    start = utc(history.window.since) if history.window.since else min(map(utc, moments), default=end)
    return Axis(start, end if end > start else start + timedelta(days=1))


def _changes_by_country(history: History) -> dict[str | None, list[ChangeEntry]]:
    """Newest first; a change of several countries is under each, one of no watched country
    under None."""
    watched = set(history.countries)
    grouped: dict[str | None, list[ChangeEntry]] = defaultdict(list)
    for change in sorted(history.changes, key=lambda c: utc(c.detected_at), reverse=True):
        codes: list[str | None] = [code for code in dict.fromkeys(change.countries) if code in watched]
        for code in codes or [None]:
            grouped[code].append(change)
    return grouped


def _points_by_country(history: History) -> dict[str, dict[str, list[Point]]]:
    """Per country and source, oldest first."""
    grouped: dict[str, dict[str, list[Point]]] = defaultdict(lambda: defaultdict(list))
    for point in sorted(history.points, key=lambda p: utc(p.at)):
        if point.country is not None:
            grouped[point.country][point.source_id].append(point)
    return grouped


def _section(code: str, index: _Index) -> Section:
    points = index.points.get(code, {})
    changes = index.changes.get(code, [])
    by_source: dict[str, list[ChangeEntry]] = defaultdict(list)
    for change in reversed(changes):
        by_source[change.source_id].append(change)
    shown = tuple(c for c in index.columns if c.id in points or c.id in by_source)
    series = [
        Series(c.id, c.publisher, c.colour, c.leveled, tuple(points.get(c.id, ())), tuple(by_source[c.id]))
        for c in shown
    ]
    live, older = _paged([index.rows[change.id] for change in changes])
    chart = timeline(series, index.axis) if series else None
    return Section(anchor(code), _place(code), code, chart, shown, live, older, len(changes))


def _other(changes: Sequence[ChangeEntry], rows: dict[int, ChangeRow]) -> Section:
    live, older = _paged([rows[change.id] for change in changes])
    return Section("other", "Other changes", None, None, (), live, older, len(changes))


def _paged(rows: Sequence[ChangeRow]) -> tuple[tuple[ChangeRow, ...], tuple[tuple[ChangeRow, ...], ...]]:
    rest = rows[LIVE_ROWS:]
    return tuple(rows[:LIVE_ROWS]), tuple(
        tuple(rest[i : i + CHUNK_ROWS]) for i in range(0, len(rest), CHUNK_ROWS)
    )


def _matrix_row(code: str, index: _Index) -> MatrixRow:
    points = index.points.get(code, {})
    last_change: dict[str, datetime] = {}
    for change in index.changes.get(code, []):  # newest first
        if change.change_class is not ChangeClass.NOISE and (
            index.until is None or utc(change.detected_at) <= index.until
        ):
            last_change.setdefault(change.source_id, change.detected_at)
    cells = tuple(
        _cell(column, points.get(column.id, []), last_change.get(column.id), index.until)
        for column in index.columns
    )
    return MatrixRow(code, _place(code), anchor(code), cells)


def _cell(
    column: Column, points: Sequence[Point], changed: datetime | None, until: datetime | None
) -> Cell | None:
    current = [p for p in points if until is None or utc(p.at) <= until]
    if not current:
        return None
    latest = current[-1]
    when = f"changed {day_text(changed)}" if changed else f"since {day_text(points[0].at)}"
    if column.leveled:
        value = str(latest.level) if latest.level is not None else "—"
        return Cell(level_tone(latest.level), value, _label(latest.label), when)
    # A carrier's own words are its notice's title.
    notice = latest.notice
    status = notice.status if notice else None
    return Cell(
        notice_tone(status), notice_word(status), _label(notice.title if notice else latest.label), when
    )


def _label(text: str | None) -> str | None:
    return shorten(one_line(text or ""), CELL_LABEL_CHARS, at_word=False) or None


def _place(code: str) -> str:
    name = country_name(code)
    return f"{name} ({code})" if name != code else code


def _window_text(history: History) -> str:
    since, until = history.window.since, history.window.until
    if since is None and until is None:
        return "all stored history"
    start = format_utc(since) if since else "the first record"
    return f"{start} – {format_utc(until) if until else 'now'}"


def _health(source: SourceView) -> HealthRow:
    url = one_line(source.url)
    return HealthRow(
        source_id=one_line(source.id),
        publisher=one_line(source.publisher),
        kind=one_line(source.kind),
        href=safe_href(url),
        active=source.active,
        interval=duration_text(source.interval) if source.interval else None,
        healthy=source.health == "ok",
        reason=shorten(one_line(source.health_reason or ""), ERROR_CHARS, at_word=False) or None,
        since=format_utc(source.health_since) if source.health_since else None,
        last_success=format_utc(source.last_success_at) if source.last_success_at else "never",
        last_check=format_utc(source.last_check_at) if source.last_check_at else "never",
        outcome=source.last_outcome,
        error=shorten(one_line(source.last_error or ""), ERROR_CHARS, at_word=False) or None,
        failures=source.consecutive_failures,
        blocked=source.blocked,
    )


def _events(history: History) -> tuple[EventRow, ...]:
    publisher = {s.id: one_line(s.publisher) for s in history.sources}
    newest = sorted(history.health_events, key=lambda e: utc(e.at), reverse=True)[:HEALTH_EVENTS]
    return tuple(
        EventRow(
            at=format_utc(event.at),
            source=publisher.get(event.source_id, event.source_id),
            recovered=event.state == "recovered",
            reason=shorten(one_line(event.reason or ""), ERROR_CHARS, at_word=False) or None,
        )
        for event in newest
    )


def _alerts(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
    ordered: Iterable[str] = [*_ALERT_ORDER, *sorted(set(counts) - set(_ALERT_ORDER))]
    return tuple((status, counts.get(status, 0)) for status in ordered)
