"""The geometry of a country's timeline (pure): each publisher's level as a step line, carrier
notices in lanes below it, every change as a marker, all on one time axis.

Only numbers and plain strings come out; the template writes the SVG and escapes every text.
Coordinates are in the SVG's ``viewBox`` units: :data:`WIDTH` wide, the height depends on the
number of lanes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.alerts.render import format_utc
from monitor.display import MONTHS
from monitor.report.history import ChangeEntry, Point
from monitor.report.wording import day_text, notice_tone, notice_word, utc

WIDTH = 800
LEFT = 112  # room for the level and lane labels
RIGHT = 14
TOP = 6
BAND = 24  # height of one level's band
LANE = 22
GAP = 8  # between the level bands and the lanes
AXIS = 22  # room for the tick labels
MAX_TICKS = 8
LANE_LABEL_CHARS = 17
SEGMENT_TEXT_WIDTH = 64  # a notice's word is written in its segment only when this fits
TITLE_REASON_CHARS = 80
# Markers of one source and class nearer than this (in viewBox units) are drawn as one, so a chart
# of a busy country stays a few hundred elements.
MARKER_GAP = 4.0
# Above this many changes in one chart, markers are smaller and merged over wider spans.
DENSE = 300
DENSE_GAP = 8.0
RADIUS, DENSE_RADIUS, MERGED_RADIUS = 5.0, 3.5, 7.0
# Consecutive step lines are drawn this far apart, so publishers at one level stay distinct.
LINE_SPREAD = 3.0

_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)
_FIXED_STEPS = (_HOUR, 3 * _HOUR, 6 * _HOUR, 12 * _HOUR, _DAY, 2 * _DAY, 7 * _DAY, 14 * _DAY)
_MONTH_STEPS = (1, 2, 3, 6, 12, 24, 60, 120)
# Fixed steps are counted from a Monday midnight, so weekly ticks fall on Mondays.
_ANCHOR = datetime.fromisoformat("1970-01-05T00:00:00+00:00")


@dataclass(frozen=True)
class Series:
    """What one source said about one country: its points (oldest first, including the last
    one before the axis starts) and its changes. ``leveled``: drawn as a step line, else as a
    lane of notices."""

    source_id: str
    publisher: str
    colour: str
    leveled: bool
    points: tuple[Point, ...]
    changes: tuple[ChangeEntry, ...]


@dataclass(frozen=True)
class Axis:
    """The time axis: ``start`` at the plot's left edge, ``end`` (later) at its right."""

    start: datetime
    end: datetime

    def x(self, moment: datetime) -> float:
        """Where ``moment`` falls, clamped to the plot, to a tenth of a unit."""
        share = (utc(moment) - self.start) / (self.end - self.start)
        return round(LEFT + min(1.0, max(0.0, share)) * (WIDTH - LEFT - RIGHT), 1)


@dataclass(frozen=True)
class Band:
    """The strip of one level, from ``y`` down, its label's baseline at ``text_y``."""

    level: int
    y: float
    height: float
    text_y: float


@dataclass(frozen=True)
class Tick:
    """A round moment on the time axis, with a grid line."""

    x: float
    label: str


@dataclass(frozen=True)
class Line:
    """A publisher's levels as a step line."""

    source_id: str
    colour: str
    d: str  # the path's data: numbers and commands only


@dataclass(frozen=True)
class Segment:
    """A notice in effect from ``x`` for ``width``; ``text`` is written in it when it fits."""

    x: float
    width: float
    tone: str
    text: str | None
    title: str


@dataclass(frozen=True)
class Lane:
    """A carrier's notices: a strip from ``y``, ``height`` high, labelled on the left."""

    source_id: str
    label: str
    title: str
    y: float
    height: float
    text_y: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Marker:
    """One change, or ``count`` changes of one source and class drawn as one."""

    x: float
    y: float
    change_class: str
    source_id: str
    count: int
    radius: float
    title: str


@dataclass(frozen=True)
class Chart:
    """Everything the SVG draws: level bands, grid and ticks, lanes, lines and markers."""

    width: int
    height: int
    plot_left: int
    plot_right: int
    top: int
    lanes_bottom: int
    tick_y: int
    bands: tuple[Band, ...]
    ticks: tuple[Tick, ...]
    lines: tuple[Line, ...]
    lanes: tuple[Lane, ...]
    markers: tuple[Marker, ...]


def timeline(series: Sequence[Series], axis: Axis) -> Chart:
    """The chart of ``series`` (in legend order) on ``axis``."""
    leveled = [s for s in series if s.leveled]
    carriers = [s for s in series if not s.leveled]
    bands_bottom = TOP + 4 * BAND
    lanes = tuple(_lane(s, axis, bands_bottom + GAP + i * LANE) for i, s in enumerate(carriers))
    lanes_bottom = bands_bottom + (GAP + len(lanes) * LANE if lanes else 0)
    offsets = {s.source_id: (i - (len(leveled) - 1) / 2) * LINE_SPREAD for i, s in enumerate(leveled)}
    lines = tuple(
        Line(s.source_id, s.colour, _step_path(s.points, axis, offsets[s.source_id])) for s in leveled
    )
    lane_y = {lane.source_id: lane.y + lane.height / 2 for lane in lanes}
    count = sum(len(s.changes) for s in series)
    dense = count > DENSE
    markers = tuple(
        marker
        for s in series
        for marker in _markers(s, axis, dense, offsets.get(s.source_id), lane_y.get(s.source_id))
    )
    return Chart(
        width=WIDTH,
        height=lanes_bottom + AXIS,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        top=TOP,
        lanes_bottom=lanes_bottom,
        tick_y=lanes_bottom + 15,
        bands=tuple(
            Band(level, _band_top(level), BAND, _band_top(level) + BAND / 2 + 4) for level in (4, 3, 2, 1)
        ),
        ticks=ticks(axis),
        lines=tuple(line for line in lines if line.d),
        lanes=lanes,
        markers=markers,
    )


def ticks(axis: Axis) -> tuple[Tick, ...]:
    """At most :data:`MAX_TICKS` round moments on ``axis`` (hours, days, Mondays, months or
    years, whichever fits), labelled as short as they stay clear."""
    span = axis.end - axis.start
    many_years = axis.start.year != axis.end.year
    for step in _FIXED_STEPS:
        if span / step <= MAX_TICKS:
            return tuple(Tick(axis.x(m), _fixed_label(m, step, many_years)) for m in _fixed(axis, step))
    months = next((m for m in _MONTH_STEPS if span / (m * 30.4 * _DAY) <= MAX_TICKS), _MONTH_STEPS[-1])
    return tuple(Tick(axis.x(m), _month_label(m, months)) for m in _months(axis, months))


def _band_top(level: int) -> float:
    return TOP + (4 - level) * BAND


def _level_y(level: int) -> float:
    return _band_top(level) + BAND / 2


def _on_scale(level: int | None) -> int | None:
    """``level`` when it is on the common scale 1–4, else None (drawn as unknown)."""
    return level if level is not None and 1 <= level <= 4 else None


def _step_path(points: Sequence[Point], axis: Axis, offset: float) -> str:
    """The path of the levels of ``points``: each level holds from its point to the next one
    (the last to the axis' end); a point without a level breaks the line."""
    shown = [p for p in points if utc(p.at) <= axis.end]
    ends = [*(axis.x(p.at) for p in shown[1:]), axis.x(axis.end)]
    parts: list[str] = []
    y_now: float | None = None
    for point, x_end in zip(shown, ends, strict=True):
        x_start = axis.x(point.at)
        if x_end <= x_start:
            continue
        level = _on_scale(point.level)
        if level is None:
            y_now = None
            continue
        y = _level_y(level) + offset
        if y_now is None:
            parts.append(f"M{x_start:.1f} {y:.1f}")
        elif y != y_now:
            parts.append(f"V{y:.1f}")
        parts.append(f"H{x_end:.1f}")
        y_now = y
    return "".join(parts)


def _lane(series: Series, axis: Axis, y: float) -> Lane:
    label = series.publisher
    if len(label) > LANE_LABEL_CHARS:
        label = label[: LANE_LABEL_CHARS - 1] + "…"
    return Lane(
        series.source_id,
        label,
        series.publisher,
        y + 2,
        LANE - 4,
        y + 15,
        tuple(_segments(series.points, axis)),
    )


def _segments(points: Sequence[Point], axis: Axis) -> Iterator[Segment]:
    """The notices in effect, one segment per notice (consecutive points about the same notice
    make one)."""
    shown = [p for p in points if utc(p.at) <= axis.end]
    ends = [*(p.at for p in shown[1:]), axis.end]
    spans: list[tuple[Point, datetime]] = []
    for point, end in zip(shown, ends, strict=True):
        same = bool(spans) and spans[-1][0].notice is not None and point.notice == spans[-1][0].notice
        if same:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((point, end))
    for point, end in spans:
        x_start, x_end = axis.x(point.at), axis.x(end)
        if point.notice is None or x_end - x_start < 0.5:
            continue
        word = notice_word(point.notice.status)
        since = day_text(max(utc(point.at), axis.start))
        yield Segment(
            x=x_start,
            width=round(x_end - x_start, 1),
            tone=notice_tone(point.notice.status),
            text=word if x_end - x_start >= SEGMENT_TEXT_WIDTH else None,
            title=f"{word}: {' '.join(point.notice.title.split())} (from {since})",
        )


def _markers(
    series: Series, axis: Axis, dense: bool, offset: float | None, lane_y: float | None
) -> Iterator[Marker]:
    """The markers of ``series``' changes, merged per class where they would overlap: on its
    lane, or on its line at the level the change left (at the foot of the levels when unknown)."""
    gap, radius = (DENSE_GAP, DENSE_RADIUS) if dense else (MARKER_GAP, RADIUS)
    times = [utc(p.at) for p in series.points]
    groups: dict[tuple[str, int], list[ChangeEntry]] = {}
    for change in series.changes:
        x = axis.x(change.detected_at)
        groups.setdefault((change.change_class.value, int(x // gap)), []).append(change)
    for (change_class, _), changes in groups.items():
        newest = changes[-1]
        x = axis.x(newest.detected_at)
        if lane_y is not None:
            y = lane_y
        else:
            level = _on_scale(newest.level_after) or _level_at(series.points, times, utc(newest.detected_at))
            y = _level_y(level) + (offset or 0.0) if level else TOP + 4 * BAND - 4
        yield Marker(
            x=x,
            y=round(y, 1),
            change_class=change_class,
            source_id=series.source_id,
            count=len(changes),
            radius=radius if len(changes) == 1 else MERGED_RADIUS,
            title=_marker_title(series, changes),
        )


def _level_at(points: Sequence[Point], times: Sequence[datetime], moment: datetime) -> int | None:
    index = bisect.bisect_right(times, moment)
    return _on_scale(points[index - 1].level) if index else None


def _marker_title(series: Series, changes: Sequence[ChangeEntry]) -> str:
    newest = changes[-1]
    reason = " ".join(newest.reasons[0].split()) if newest.reasons else ""
    if len(reason) > TITLE_REASON_CHARS:
        reason = reason[: TITLE_REASON_CHARS - 1] + "…"
    if len(changes) == 1:
        head = f"{newest.change_class.value} · {series.publisher} · {format_utc(newest.detected_at)}"
    else:
        first, last = day_text(changes[0].detected_at), day_text(newest.detected_at)
        days = first if first == last else f"{first} – {last}"
        head = f"{len(changes)} {newest.change_class.value} changes · {series.publisher} · {days}"
    return f"{head} · {reason}" if reason else head


def _fixed(axis: Axis, step: timedelta) -> Iterator[datetime]:
    moment = _ANCHOR + -((_ANCHOR - axis.start) // step) * step
    while moment <= axis.end:
        yield moment
        moment += step


def _months(axis: Axis, months: int) -> Iterator[datetime]:
    index = axis.start.year * 12 + axis.start.month - 1
    index += -index % months
    while True:
        moment = datetime(index // 12, index % 12 + 1, 1, tzinfo=axis.start.tzinfo)
        if moment > axis.end:
            return
        if moment >= axis.start:
            yield moment
        index += months


def _fixed_label(moment: datetime, step: timedelta, many_years: bool) -> str:
    day = f"{moment.day} {MONTHS[moment.month - 1]}"
    if step < _DAY:
        return f"{day} {moment:%H:%M}"
    return f"{day} {moment.year}" if many_years else day


def _month_label(moment: datetime, months: int) -> str:
    return str(moment.year) if months >= 12 else f"{MONTHS[moment.month - 1]} {moment.year}"
