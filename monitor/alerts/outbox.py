"""The durable outbox: alerts are queued in the transaction that writes their change (or a
source's health event), then taken, sent and recorded by the delivery loop.

At-least-once with one row per (change, channel) or (health event, channel): a row recorded as
``sent`` is never taken again. A worker takes due rows by moving their ``next_attempt_at``
forward by a lease (one statement; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so workers do not
wait on each other); if it dies before recording the outcome, the row becomes due again when the
lease ends. A worker that stops gives back what it took and did not send: due again at once.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import aliased

from monitor.alerts.routing import ESCALATIONS, Router
from monitor.database import (
    AlertRow,
    ChangeRow,
    CheckRow,
    ContentRow,
    HealthEventRow,
    SnapshotRow,
    SourceRow,
    aware_utc,
    insert_missing,
    retry_unavailable,
    stored_change,
    transaction,
)
from monitor.health import Transition
from monitor.models import ChangeClass, Outcome, Record, StoredChange

# Longer than any one delivery can take (apprise's own timeouts are seconds), so a row in flight
# is never taken by a second worker while the first is still sending it.
LEASE = timedelta(minutes=10)
MAX_ERROR_CHARS = 500


class _LeaseLostError(Exception):
    """Rolls back a lease renewal that could not cover every alert of a message."""


class AlertStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Purpose(StrEnum):
    CHANGE = "change"  # tells a channel about a change
    HEALTH = "health"  # tells a channel that a source stopped working, or works again
    FAILURE = "failure"  # tells a channel that an alert to another channel could not be delivered


@dataclass(frozen=True)
class QueuedChange:
    """A change just written, as routing needs it."""

    change_id: int
    key: str
    country: str | None
    change_class: ChangeClass


@dataclass(frozen=True)
class Alert:
    """One outbox row, with what it is about.

    An alert about a change has ``change_id`` and ``change_class``; a health alert has
    ``health_event_id`` and ``health_state`` instead; a failure report has those of the alert
    it reports on. ``source_id`` is the change's or the event's source, ``record_key`` the
    change's record (None for health). ``detected_at`` is when the change was detected (the
    event's time for health); ``published_at`` the publisher's own time of the change, if known.
    """

    id: int
    key: str
    channel: str
    purpose: Purpose
    status: AlertStatus
    attempts: int
    change_id: int | None
    change_class: ChangeClass | None
    health_event_id: int | None
    health_state: str | None
    source_id: str
    record_key: str | None
    detected_at: datetime
    published_at: datetime | None
    about_alert_id: int | None
    batch: str | None
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class ChangeDetails:
    """A change with its source's kind and the records on both sides, for rendering a message."""

    change: StoredChange
    kind: str
    before: Record | None
    after: Record


@dataclass(frozen=True)
class HealthDetails:
    """A health event with what a message about it shows.

    ``unhealthy_since``: for a recovery, when the source was marked unhealthy. ``last_success_at``
    and ``last_error``: the last successful check before the event and the last error up to it.
    """

    event_id: int
    source_id: str
    kind: str
    url: str
    state: str  # "unhealthy" or "recovered"
    reason: str | None
    at: datetime
    unhealthy_since: datetime | None
    last_success_at: datetime | None
    last_error: str | None


def alert_key(purpose: Purpose, subject_id: int, channel: str) -> str:
    """The stable id of an alert: the same for every attempt, shown in messages so that a
    duplicate (a crash between sending and recording) can be recognised."""
    return f"{purpose.value}-{subject_id}-{channel}"


def queue(
    conn: Connection, router: Router, source_id: str, changes: Sequence[QueuedChange], now: datetime
) -> int:
    """Queue the alerts about ``changes`` of ``source_id`` inside the caller's transaction.

    Returns the number of alerts queued."""
    rows: list[dict[str, Any]] = []
    for change in changes:
        facts = router.facts(source_id, change.country, change.change_class)
        escalated: Collection[str] = ()
        if change.change_class is ChangeClass.RELAXED:
            escalated = _escalation_channels(conn, source_id, change.key, change.change_id)
        for planned in router.route(facts, now, escalated):
            rows.append(
                {
                    "key": alert_key(Purpose.CHANGE, change.change_id, planned.channel),
                    "channel": planned.channel,
                    "purpose": Purpose.CHANGE.value,
                    "change_id": change.change_id,
                    "change_class": change.change_class.value,
                    "batch": planned.batch,
                    "created_at": now,
                    "next_attempt_at": planned.due_at,
                }
            )
    if rows:
        conn.execute(sa.insert(AlertRow), rows)
    return len(rows)


def queue_health(conn: Connection, event_id: int, channels: Sequence[str], now: datetime) -> int:
    """Queue a health alert about event ``event_id`` to each of ``channels``, due at ``now``
    (never part of a digest), inside the caller's transaction. Returns the number queued."""
    rows = [
        {
            "key": alert_key(Purpose.HEALTH, event_id, channel),
            "channel": channel,
            "purpose": Purpose.HEALTH.value,
            "health_event_id": event_id,
            "created_at": now,
            "next_attempt_at": now,
        }
        for channel in channels
    ]
    if rows:
        conn.execute(sa.insert(AlertRow), rows)
    return len(rows)


def _escalation_channels(conn: Connection, source_id: str, key: str, change_id: int) -> set[str]:
    """The channels alerted to the escalations of (source, key) since its last relaxation."""
    same = (ChangeRow.source_id == source_id, ChangeRow.key == key, ChangeRow.id < change_id)
    last_relaxed = (
        sa.select(sa.func.coalesce(sa.func.max(ChangeRow.id), 0))
        .where(*same, ChangeRow.change_class == ChangeClass.RELAXED.value)
        .scalar_subquery()
    )
    query = (
        sa.select(AlertRow.channel)
        .distinct()
        .join(ChangeRow, ChangeRow.id == AlertRow.change_id)
        .where(
            *same,
            ChangeRow.id > last_relaxed,
            ChangeRow.change_class.in_([c.value for c in ESCALATIONS]),
            AlertRow.purpose == Purpose.CHANGE.value,
        )
    )
    return set(conn.execute(query).scalars())


class Outbox:
    """The outbox of one database. Thread-safe: every method runs in its own transaction."""

    def __init__(self, engine: Engine, shown: str) -> None:
        self._engine = engine
        self._shown = shown

    def claim(self, now: datetime, *, lease: timedelta = LEASE, limit: int = 500) -> list[Alert]:
        """Take the pending alerts due at ``now`` (oldest due first): count an attempt and hold
        them for ``lease``. The caller records each one's outcome."""
        now = aware_utc(now, "now")
        due = (
            sa.select(AlertRow.id)
            .where(AlertRow.status == AlertStatus.PENDING.value, AlertRow.next_attempt_at <= now)
            .order_by(AlertRow.next_attempt_at, AlertRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        taken = (
            sa.update(AlertRow)
            .where(AlertRow.id.in_(due.scalar_subquery()))
            .values(attempts=AlertRow.attempts + 1, next_attempt_at=now + lease)
            .returning(AlertRow.id)
        )
        with self._transaction("take due alerts") as conn:
            ids = list(conn.execute(taken).scalars())
            return self._alerts(conn, AlertRow.id.in_(ids)) if ids else []

    def renew(self, alerts: Sequence[Alert], now: datetime, *, lease: timedelta = LEASE) -> bool:
        """Extend the lease on ``alerts`` (as claimed) to ``now + lease``, all or none.

        False, and nothing changes, when any of them is no longer held by that claim: sent,
        failed, or claimed again by another worker after the lease ran out (which counted
        another attempt). Called before each message, so a lease covers one message, not a
        whole batch."""
        held = sa.or_(*(sa.and_(AlertRow.id == a.id, AlertRow.attempts == a.attempts) for a in alerts))
        query = (
            sa.update(AlertRow)
            .where(held, AlertRow.status == AlertStatus.PENDING.value)
            .values(next_attempt_at=aware_utc(now, "now") + lease)
        )
        try:
            with self._transaction("renew the lease on alerts") as conn:
                if conn.execute(query).rowcount != len(alerts):
                    raise _LeaseLostError
        except _LeaseLostError:
            return False
        return True

    def release(self, alerts: Sequence[Alert], now: datetime) -> int:
        """Give back ``alerts`` (as claimed) without sending them: each becomes due at ``now``
        and loses the attempt its claim counted, so the next worker takes it at once and its
        retry budget is untouched. Returns how many were released.

        Only alerts still held by that claim (same attempt count, pending) change; one sent,
        failed or claimed again by another worker meanwhile is left alone."""
        if not alerts:
            return 0
        held = sa.tuple_(AlertRow.id, AlertRow.attempts).in_([(a.id, a.attempts) for a in alerts])
        query = (
            sa.update(AlertRow)
            .where(held, AlertRow.status == AlertStatus.PENDING.value)
            .values(attempts=AlertRow.attempts - 1, next_attempt_at=aware_utc(now, "now"))
        )
        with self._transaction("release alerts") as conn:
            return int(conn.execute(query).rowcount)

    def mark_sent(self, ids: Collection[int], now: datetime) -> int:
        """Record alerts as sent; returns how many were still pending (the others are left alone).

        While the database does not answer, tried again for a while (see
        :func:`~monitor.database.retry_unavailable`): a message sent and not recorded would be
        sent again."""
        query = (
            sa.update(AlertRow)
            .where(AlertRow.id.in_(list(ids)), AlertRow.status == AlertStatus.PENDING.value)
            .values(status=AlertStatus.SENT.value, sent_at=aware_utc(now, "now"), last_error=None)
        )

        def record() -> int:
            with self._transaction("record sent alerts") as conn:
                return int(conn.execute(query).rowcount)

        return retry_unavailable(record)

    def mark_failed_attempt(
        self,
        ids: Collection[int],
        now: datetime,
        error: str,
        retry_at: datetime | None,
        report_to: Sequence[str] = (),
    ) -> None:
        """Record a failed attempt: retry at ``retry_at``, or (None) give up: the alerts become
        ``failed`` and, in the same transaction, each of ``report_to`` gets a failure report
        (not for failure reports themselves, which would loop)."""
        values: dict[str, Any] = {"last_error": error[:MAX_ERROR_CHARS]}
        if retry_at is None:
            values["status"] = AlertStatus.FAILED.value
        else:
            values["next_attempt_at"] = aware_utc(retry_at, "retry_at")
        query = (
            sa.update(AlertRow)
            .where(AlertRow.id.in_(list(ids)), AlertRow.status == AlertStatus.PENDING.value)
            .values(values)
            .returning(
                AlertRow.id,
                AlertRow.change_id,
                AlertRow.health_event_id,
                AlertRow.change_class,
                AlertRow.purpose,
            )
        )

        def record() -> None:
            with self._transaction("record a failed delivery") as conn:
                updated = conn.execute(query).all()
                if retry_at is None and report_to:
                    _queue_failure_reports(conn, updated, report_to, aware_utc(now, "now"))

        retry_unavailable(record)  # all or nothing, and the reports are queued once: safe to repeat

    def retry_failed(self, now: datetime, channels: Collection[str] = ()) -> int:
        """Make failed alerts (of ``channels``, or all) pending again with a fresh attempt count."""
        query = sa.update(AlertRow).where(AlertRow.status == AlertStatus.FAILED.value)
        if channels:
            query = query.where(AlertRow.channel.in_(list(channels)))
        query = query.values(
            status=AlertStatus.PENDING.value, attempts=0, next_attempt_at=aware_utc(now, "now")
        )
        with self._transaction("retry failed alerts") as conn:
            return int(conn.execute(query).rowcount)

    def alerts(self, status: AlertStatus | None = None, limit: int | None = None) -> list[Alert]:
        """Alerts, newest first; optionally only those with ``status``."""
        condition = sa.true() if status is None else AlertRow.status == status.value
        with self._transaction("read alerts") as conn:
            return self._alerts(conn, condition, limit=limit, newest_first=True)

    def get(self, ids: Collection[int]) -> dict[int, Alert]:
        with self._transaction("read alerts") as conn:
            return {a.id: a for a in self._alerts(conn, AlertRow.id.in_(list(ids)))}

    def counts(self) -> dict[str, int]:
        """The number of alerts per status (every status present, zero included)."""
        query = sa.select(AlertRow.status, sa.func.count()).group_by(AlertRow.status)
        with self._transaction("count alerts") as conn:
            found = dict(conn.execute(query).tuples().all())
        return {status.value: int(found.get(status.value, 0)) for status in AlertStatus}

    def details(self, change_ids: Collection[int]) -> dict[int, ChangeDetails]:
        """The changes with their records, by change id."""
        before, after = aliased(SnapshotRow), aliased(SnapshotRow)
        before_text, after_text = aliased(ContentRow), aliased(ContentRow)
        query = (
            sa.select(
                ChangeRow.__table__,
                SourceRow.kind,
                before_text.text.label("before_text"),
                after_text.text.label("after_text"),
            )
            .join(SourceRow, SourceRow.id == ChangeRow.source_id)
            .join(after, after.id == ChangeRow.snapshot_id)
            .join(after_text, after_text.hash == after.content_hash)
            .outerjoin(before, before.id == ChangeRow.previous_snapshot_id)
            .outerjoin(before_text, before_text.hash == before.content_hash)
            .where(ChangeRow.id.in_(list(change_ids)))
        )
        with self._transaction("read changes") as conn:
            rows = conn.execute(query).all()
        return {row.id: _details(row) for row in rows}

    def health_details(self, event_ids: Collection[int]) -> dict[int, HealthDetails]:
        """The health events with their sources and the checks around them, by event id."""
        event = aliased(HealthEventRow)
        same_source = CheckRow.source_id == event.source_id
        ok = [o.value for o in Outcome if o.ok]
        unhealthy_since = (
            sa.select(sa.func.max(HealthEventRow.at))
            .where(
                HealthEventRow.source_id == event.source_id,
                HealthEventRow.id < event.id,
                HealthEventRow.state == Transition.UNHEALTHY.value,
            )
            .scalar_subquery()
        )
        last_success = (
            sa.select(sa.func.max(CheckRow.started_at))
            .where(same_source, CheckRow.outcome.in_(ok), CheckRow.started_at < event.at)
            .scalar_subquery()
        )
        last_error = (
            sa.select(CheckRow.error)
            .where(same_source, CheckRow.outcome.not_in(ok), CheckRow.started_at <= event.at)
            .order_by(CheckRow.started_at.desc(), CheckRow.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = (
            sa.select(
                event,
                SourceRow.kind,
                SourceRow.url,
                unhealthy_since.label("unhealthy_since"),
                last_success.label("last_success_at"),
                last_error.label("last_error"),
            )
            .join(SourceRow, SourceRow.id == event.source_id)
            .where(event.id.in_(list(event_ids)))
        )
        with self._transaction("read health events") as conn:
            rows = conn.execute(query).all()
        return {row.id: _health_details(row) for row in rows}

    def _alerts(
        self, conn: Connection, condition: Any, *, limit: int | None = None, newest_first: bool = False
    ) -> list[Alert]:
        order = (AlertRow.id.desc(),) if newest_first else (AlertRow.next_attempt_at, AlertRow.id)
        # Outer joins: an alert is about a change or a health event, never both.
        query = (
            sa.select(
                AlertRow.__table__,
                sa.func.coalesce(ChangeRow.source_id, HealthEventRow.source_id).label("source_id"),
                ChangeRow.key.label("record_key"),
                sa.func.coalesce(ChangeRow.detected_at, HealthEventRow.at).label("detected_at"),
                ChangeRow.published_at,
                HealthEventRow.state.label("health_state"),
            )
            .outerjoin(ChangeRow, ChangeRow.id == AlertRow.change_id)
            .outerjoin(HealthEventRow, HealthEventRow.id == AlertRow.health_event_id)
            .where(condition)
            .order_by(*order)
            .limit(limit)
        )
        return [_alert(row) for row in conn.execute(query)]

    def _transaction(self, action: str) -> AbstractContextManager[Connection]:
        return transaction(self._engine, self._shown, action)


def _queue_failure_reports(
    conn: Connection, failed: Sequence[sa.Row[Any]], report_to: Sequence[str], now: datetime
) -> None:
    rows = [
        {
            "key": alert_key(Purpose.FAILURE, row.id, channel),
            "channel": channel,
            "purpose": Purpose.FAILURE.value,
            "change_id": row.change_id,
            "health_event_id": row.health_event_id,
            "about_alert_id": row.id,
            "change_class": row.change_class,
            "created_at": now,
            "next_attempt_at": now,
        }
        for row in failed
        if row.purpose != Purpose.FAILURE.value
        for channel in report_to
    ]
    if rows:
        # An alert retried and given up on again was already reported: one report is enough.
        insert_missing(conn, AlertRow, rows)


def _alert(row: sa.Row[Any]) -> Alert:
    return Alert(
        id=row.id,
        key=row.key,
        channel=row.channel,
        purpose=Purpose(row.purpose),
        status=AlertStatus(row.status),
        attempts=row.attempts,
        change_id=row.change_id,
        change_class=None if row.change_class is None else ChangeClass(row.change_class),
        health_event_id=row.health_event_id,
        health_state=row.health_state,
        source_id=row.source_id,
        record_key=row.record_key,
        detected_at=row.detected_at,
        published_at=row.published_at,
        about_alert_id=row.about_alert_id,
        batch=row.batch,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
    )


def _details(row: sa.Row[Any]) -> ChangeDetails:
    before = Record.from_json(json.loads(row.before_text)) if row.before_text is not None else None
    return ChangeDetails(stored_change(row), row.kind, before, Record.from_json(json.loads(row.after_text)))


def _health_details(row: sa.Row[Any]) -> HealthDetails:
    return HealthDetails(
        event_id=row.id,
        source_id=row.source_id,
        kind=row.kind,
        url=row.url,
        state=row.state,
        reason=row.reason,
        at=row.at,
        unhealthy_since=row.unhealthy_since,
        last_success_at=row.last_success_at,
        last_error=row.last_error,
    )
