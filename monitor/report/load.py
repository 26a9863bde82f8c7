"""Reading a :class:`~monitor.report.history.History` from the store.

Only small columns are read: the snapshots' levels and facts (:mod:`monitor.facts`), the
changes' reasons and diffs, and per-change alert counts, so a history of thousands of changes
loads in a fraction of a second. A record without a country of its own (a generic page) counts
for the countries configured for its source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from monitor.config import Config, SourceConfig
from monitor.database import AlertRow, ChangeRow, CheckRow, HealthEventRow, SnapshotRow, SourceRow
from monitor.models import ChangeClass, NoticeStatus
from monitor.report.history import (
    ChangeEntry,
    HealthEventView,
    History,
    NoticeView,
    Point,
    SourceView,
    Window,
)
from monitor.store import Store

_OLDEST = datetime.min.replace(tzinfo=UTC)


def load_history(store: Store, config: Config, window: Window, now: datetime) -> History:
    """The history in ``window`` as stored now, with the sources of ``config`` (and any source
    no longer configured that has something to show in the window)."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(SourceRow.__table__)).all()
        countries_of = _countries_by_source(config, rows)
        points = _points(conn, window, countries_of)
        changes = _changes(conn, config, window, countries_of)
        events = _health_events(conn, window)
    shown = {p.source_id for p in points} | {c.source_id for c in changes}
    sources = _sources(config, rows, shown)
    listed = {s.id for s in sources}
    return History(
        generated_at=now,
        window=window,
        sources=sources,
        countries=_countries(window, config, points, changes),
        points=tuple(points),
        changes=tuple(changes),
        health_events=tuple(e for e in events if e.source_id in listed),
        alerts=store.outbox.counts(),
    )


def data_version(store: Store) -> str:
    """A short text that changes whenever anything a history shows may have changed."""
    parts = [
        sa.select(sa.func.max(table.id)).scalar_subquery()
        for table in (CheckRow, SnapshotRow, ChangeRow, HealthEventRow, AlertRow)
    ]
    alerts_sent = sa.select(sa.func.max(AlertRow.sent_at)).scalar_subquery()
    with store.engine.connect() as conn:
        values = conn.execute(sa.select(*parts, alerts_sent)).one()
    return "-".join("0" if value is None else str(value) for value in values)


# --- sources ------------------------------------------------------------------------------------


def _countries_by_source(config: Config, rows: Sequence[sa.Row[Any]]) -> dict[str, tuple[str, ...]]:
    configured = {s.id: s.countries for s in config.sources}
    return {row.id: configured.get(row.id, ()) for row in rows}


def _sources(config: Config, rows: Sequence[sa.Row[Any]], shown: set[str]) -> tuple[SourceView, ...]:
    """Configured sources in configuration order (checked or not yet), then the sources no
    longer configured that have history to show."""
    stored = {row.id: row for row in rows}
    configured = [
        _source_view(config, stored[s.id]) if s.id in stored else _unchecked(config, s)
        for s in config.sources
    ]
    listed = {s.id for s in config.sources}
    gone = sorted((row for row in rows if row.id in shown and row.id not in listed), key=lambda row: row.id)
    return (*configured, *(_source_view(config, row) for row in gone))


def _unchecked(config: Config, source: SourceConfig) -> SourceView:
    """A configured source the database does not know yet: never checked."""
    return SourceView(
        id=source.id,
        kind=source.kind,
        publisher=source.publisher_name,
        url=source.url,
        active=True,
        countries=source.countries,
        interval=config.interval_of(source),
        health="ok",
        health_reason=None,
        health_since=None,
        last_check_at=None,
        last_outcome=None,
        last_error=None,
        consecutive_failures=0,
        last_success_at=None,
    )


def _source_view(config: Config, row: sa.Row[Any]) -> SourceView:
    configured = next((s for s in config.sources if s.id == row.id), None)
    return SourceView(
        id=row.id,
        kind=row.kind,
        publisher=config.publisher_of(row.id, row.kind),
        url=row.url,
        active=configured is not None,
        countries=configured.countries if configured else (),
        interval=config.interval_of(configured) if configured else None,
        health=row.health,
        health_reason=row.health_reason,
        health_since=row.health_since,
        last_check_at=row.last_check_at,
        last_outcome=row.last_outcome,
        last_error=row.last_error,
        consecutive_failures=row.consecutive_failures,
        last_success_at=row.last_success_at,
    )


def _countries(
    window: Window, config: Config, points: Iterable[Point], changes: Iterable[ChangeEntry]
) -> tuple[str, ...]:
    if window.countries:
        return tuple(sorted(set(window.countries)))
    found = {c for s in config.sources for c in s.countries}
    found |= {p.country for p in points if p.country}
    found |= {c for change in changes for c in change.countries}
    return tuple(sorted(found))


# --- points -------------------------------------------------------------------------------------


def _points(conn: Connection, window: Window, countries_of: Mapping[str, tuple[str, ...]]) -> list[Point]:
    """Every snapshot in the window, plus the last one before it of each (source, key)."""
    columns = (
        SnapshotRow.id,
        SnapshotRow.source_id,
        SnapshotRow.key,
        SnapshotRow.country,
        SnapshotRow.level,
        SnapshotRow.facts,
        SnapshotRow.taken_at,
    )
    query = sa.select(*columns)
    if window.until is not None:
        query = query.where(SnapshotRow.taken_at <= window.until)
    if window.since is not None:
        before = (
            sa.select(sa.func.max(SnapshotRow.id))
            .where(SnapshotRow.taken_at < window.since)
            .group_by(SnapshotRow.source_id, SnapshotRow.key)
        )
        query = query.where(sa.or_(SnapshotRow.taken_at >= window.since, SnapshotRow.id.in_(before)))
    if window.countries:
        query = query.where(sa.or_(SnapshotRow.country.in_(window.countries), SnapshotRow.country.is_(None)))
    points = []
    for row in conn.execute(query.order_by(SnapshotRow.taken_at, SnapshotRow.id)):
        facts = row.facts or {}
        notice = _in_effect(_notices(facts))
        for country in _record_countries(row.country, countries_of.get(row.source_id, ())):
            if not window.countries or country in window.countries:
                points.append(
                    Point(
                        source_id=row.source_id,
                        key=row.key,
                        country=country,
                        at=row.taken_at,
                        level=row.level,
                        label=facts.get("level_label"),
                        notice=notice,
                    )
                )
    return points


def _record_countries(country: str | None, configured: tuple[str, ...]) -> tuple[str, ...]:
    return (country,) if country else configured


def _notices(facts: Mapping[str, Any]) -> list[NoticeView]:
    return [
        NoticeView(
            id=str(n.get("id") or ""),
            title=str(n.get("title") or ""),
            url=str(n.get("url") or ""),
            status=NoticeStatus(n.get("status") or NoticeStatus.INFO),
            published_at=_when(n.get("published_at")),
        )
        for n in facts.get("notices") or ()
    ]


def _in_effect(notices: Sequence[NoticeView]) -> NoticeView | None:
    """The newest notice that announces something (a suspension, a resumption...), if any."""
    telling = [n for n in notices if n.status is not NoticeStatus.INFO]
    return max(telling, key=lambda n: n.published_at or _OLDEST, default=None)


def _about(before: Sequence[NoticeView], after: Sequence[NoticeView]) -> NoticeView | None:
    """The newest notice that is new or changed status: the one a carrier's change is about."""
    old = {(n.id, n.status) for n in before}
    fresh = [n for n in after if (n.id, n.status) not in old]
    return max(fresh, key=lambda n: n.published_at or _OLDEST, default=None)


def _when(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- changes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Delivered:
    sent: int
    failed: int
    pending: int
    first_sent_at: datetime | None


def _changes(
    conn: Connection, config: Config, window: Window, countries_of: Mapping[str, tuple[str, ...]]
) -> list[ChangeEntry]:
    before, after = aliased(SnapshotRow), aliased(SnapshotRow)
    query = (
        sa.select(
            ChangeRow.__table__,
            SourceRow.kind,
            after.country.label("country"),
            after.facts.label("facts_after"),
            before.facts.label("facts_before"),
        )
        .join(SourceRow, SourceRow.id == ChangeRow.source_id)
        .join(after, after.id == ChangeRow.snapshot_id)
        .outerjoin(before, before.id == ChangeRow.previous_snapshot_id)
    )
    if window.since is not None:
        query = query.where(ChangeRow.detected_at >= window.since)
    if window.until is not None:
        query = query.where(ChangeRow.detected_at <= window.until)
    if window.countries:
        query = query.where(sa.or_(after.country.in_(window.countries), after.country.is_(None)))
    rows = conn.execute(query.order_by(ChangeRow.detected_at, ChangeRow.id)).all()
    delivered = _deliveries(conn, [row.id for row in rows])
    entries = []
    for row in rows:
        countries = _record_countries(row.country, countries_of.get(row.source_id, ()))
        if window.countries:
            countries = tuple(c for c in countries if c in window.countries)
            if not countries:
                continue
        entries.append(_entry(config, row, countries, delivered.get(row.id)))
    return entries


def _entry(
    config: Config, row: sa.Row[Any], countries: tuple[str, ...], delivered: _Delivered | None
) -> ChangeEntry:
    facts_after, facts_before = row.facts_after or {}, row.facts_before or {}
    notice = _about(_notices(facts_before), _notices(facts_after))
    delivered = delivered or _Delivered(0, 0, 0, None)
    return ChangeEntry(
        id=row.id,
        source_id=row.source_id,
        kind=row.kind,
        publisher=config.publisher_of(row.source_id, row.kind),
        key=row.key,
        countries=countries,
        detected_at=row.detected_at,
        published_at=row.published_at,
        change_class=ChangeClass(row.change_class),
        reasons=tuple(row.reasons),
        diff=row.diff,
        level_before=row.level_before,
        level_after=row.level_after,
        label_before=facts_before.get("level_label"),
        label_after=facts_after.get("level_label"),
        title=notice.title if notice else str(facts_after.get("title") or ""),
        url=notice.url if notice and notice.url else str(facts_after.get("url") or ""),
        notice=notice,
        alerts_sent=delivered.sent,
        alerts_failed=delivered.failed,
        alerts_pending=delivered.pending,
        first_sent_at=delivered.first_sent_at,
    )


def _deliveries(conn: Connection, change_ids: Sequence[int]) -> dict[int, _Delivered]:
    """Per change: its alerts sent, failed and pending, and when the first one was delivered."""
    if not change_ids:
        return {}

    def count(status: str) -> sa.ColumnElement[int]:
        return sa.func.sum(sa.case((AlertRow.status == status, 1), else_=0))

    query = (
        sa.select(
            AlertRow.change_id,
            count("sent"),
            count("failed"),
            count("pending"),
            sa.func.min(AlertRow.sent_at),
        )
        .where(AlertRow.change_id.is_not(None), AlertRow.purpose == "change")
        .group_by(AlertRow.change_id)
    )
    if len(change_ids) <= 1000:  # a longer list reads every change's alerts instead
        query = query.where(AlertRow.change_id.in_(change_ids))
    found: dict[int, _Delivered] = {}
    for change_id, sent, failed, pending, first in conn.execute(query).tuples():
        if change_id is not None:  # excluded by the query; the column is nullable
            found[change_id] = _Delivered(int(sent or 0), int(failed or 0), int(pending or 0), first)
    return found


# --- health -------------------------------------------------------------------------------------


def _health_events(conn: Connection, window: Window) -> list[HealthEventView]:
    query = sa.select(HealthEventRow.__table__)
    if window.since is not None:
        query = query.where(HealthEventRow.at >= window.since)
    if window.until is not None:
        query = query.where(HealthEventRow.at <= window.until)
    rows = conn.execute(query.order_by(HealthEventRow.at, HealthEventRow.id)).all()
    return [HealthEventView(row.source_id, row.at, row.state, row.reason) for row in rows]
