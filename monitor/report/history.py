"""What the history report, ``monitor history`` and the feeds show: plain frozen data.

:mod:`monitor.report.load` reads it from the store; everything that renders it is pure and
takes a :class:`History`. Times are aware UTC. Every text that came from a source (titles,
labels, reasons, diffs, notice titles, URLs) is untrusted and must be escaped where it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from monitor.models import ChangeClass, NoticeStatus


@dataclass(frozen=True)
class Window:
    """What a history covers: changes detected in [since, until] (None: unbounded), of some
    countries (empty: all)."""

    since: datetime | None = None
    until: datetime | None = None
    countries: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceView:
    """A source as the report lists it, with its health at the time the history was read."""

    id: str
    kind: str
    publisher: str  # the name messages use ("UK FCDO", "MSC", or the configured ``publisher``)
    url: str
    active: bool  # still in the configuration
    countries: tuple[str, ...]  # the configured ones (may be empty: every country of the payload)
    interval: timedelta | None  # None for a source no longer configured
    health: str  # "ok" or "unhealthy"
    health_reason: str | None
    health_since: datetime | None
    last_check_at: datetime | None
    last_outcome: str | None  # an Outcome value
    last_error: str | None
    consecutive_failures: int
    last_success_at: datetime | None

    @property
    def blocked(self) -> bool:
        return self.last_outcome == "blocked"


@dataclass(frozen=True)
class NoticeView:
    """A carrier notice (or the one a change is about)."""

    id: str
    title: str
    url: str
    status: NoticeStatus
    published_at: datetime | None


@dataclass(frozen=True)
class Point:
    """What one source said about one country from ``at`` on (one stored snapshot).

    ``level`` is the common scale 1–4 (None: the source gives no level, e.g. a carrier);
    ``label`` the publisher's own wording; ``notice`` the newest notice in effect for a carrier
    (None: no notice about the country).
    """

    source_id: str
    key: str
    country: str | None
    at: datetime
    level: int | None
    label: str | None
    notice: NoticeView | None


@dataclass(frozen=True)
class ChangeEntry:
    """One classified change with what a reader needs to judge it.

    ``countries``: the record's country, else the source's configured countries.
    ``published_at``: the publisher's own time of the change, when it gives one.
    ``notice``: for a carrier, the notice the change is about. ``first_sent_at``: when its
    first alert was delivered (None: none sent).
    """

    id: int
    source_id: str
    kind: str
    publisher: str
    key: str
    countries: tuple[str, ...]
    detected_at: datetime
    published_at: datetime | None
    change_class: ChangeClass
    reasons: tuple[str, ...]
    diff: str  # unified diff of the record's text
    level_before: int | None
    level_after: int | None
    label_before: str | None
    label_after: str | None
    title: str
    url: str  # the official page (or the notice's own page)
    notice: NoticeView | None
    alerts_sent: int
    alerts_failed: int
    alerts_pending: int
    first_sent_at: datetime | None

    @property
    def country(self) -> str | None:
        """The one country the change is about; None when it has none or several."""
        return self.countries[0] if len(self.countries) == 1 else None

    @property
    def detection_delay(self) -> timedelta | None:
        """From the publisher's own time to our detection (None: no publisher time)."""
        return self.detected_at - self.published_at if self.published_at else None

    @property
    def delivery_delay(self) -> timedelta | None:
        """From detection to the first alert delivered (None: none delivered)."""
        return self.first_sent_at - self.detected_at if self.first_sent_at else None


@dataclass(frozen=True)
class HealthEventView:
    """A source becoming unhealthy (with why) or recovering."""

    source_id: str
    at: datetime
    state: str  # "unhealthy" or "recovered"
    reason: str | None


@dataclass(frozen=True)
class History:
    """Everything the report shows, read at ``generated_at``.

    ``points`` and ``changes`` are oldest first. ``points`` include, per (source, key), the
    last one before ``window.since``, so the state at the start of the window is known.
    ``countries``: the watched countries (configured or seen in the window), sorted; a change
    or point without a country is listed under none of them but still in ``changes``.
    ``alerts``: the outbox's count per status.
    """

    generated_at: datetime
    window: Window
    sources: tuple[SourceView, ...]
    countries: tuple[str, ...]
    points: tuple[Point, ...]
    changes: tuple[ChangeEntry, ...]
    health_events: tuple[HealthEventView, ...]
    alerts: dict[str, int]


def moment(text: str, *, end_of_day: bool = False) -> datetime:
    """A time given on a command line or in a URL: ``YYYY-MM-DD`` or an ISO 8601 date-time.

    A date alone is the start of that day in UTC, or with ``end_of_day`` its last microsecond
    (so an "until" date includes the whole day); a date-time without an offset is UTC.
    Raises ``ValueError`` saying what is expected.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1, microseconds=-1) if end_of_day else start
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time") from None
    except OverflowError:  # 9999-12-31T23:59-01:00 is in the year 10000 in UTC
        raise ValueError(f"{text!r} is out of range once in UTC") from None


def window_of(since: str | None, until: str | None, countries: Sequence[str] = ()) -> Window:
    """A window from texts as users type them; ``ValueError`` for a bad date or country code,
    or a window that ends before it starts."""
    codes = tuple(dict.fromkeys(code.strip().upper() for code in countries))
    for code in codes:
        if len(code) != 2 or not code.isascii() or not code.isalpha():
            raise ValueError(f"{code!r} is not a country code (two letters, ISO 3166-1 alpha-2)")
    start = moment(since) if since else None
    end = moment(until, end_of_day=True) if until else None
    if start and end and end < start:
        raise ValueError(f"until ({until}) is before since ({since})")
    return Window(since=start, until=end, countries=codes)
