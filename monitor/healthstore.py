"""Source health in the database: each change of state recorded once, with its alerts.

A transition is one conditional UPDATE of ``sources`` (to ``unhealthy`` only where it is ``ok``,
to ``ok`` only where it is ``unhealthy``), so when several workers judge the same source at the
same time exactly one of them records it: PostgreSQL makes the others wait on the row and then
find the condition false; SQLite runs one writer at a time. The winner writes a
``health_events`` row and queues one alert per channel that hears of the source's health, in
the same transaction. The verdicts themselves come from :mod:`monitor.health`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.alerts.outbox import queue_health
from monitor.alerts.routing import Router
from monitor.database import HealthEventRow, SourceRow, aware_utc, masked, transaction
from monitor.health import Health, Transition, Verdict, staleness

log = logging.getLogger(__name__)


class HasEngine(Protocol):
    """Anything holding the engine of a monitor database, such as :class:`monitor.store.Store`."""

    @property
    def engine(self) -> Engine: ...


def record(
    conn: Connection, source_id: str, verdict: Verdict, now: datetime, router: Router | None
) -> int | None:
    """Record ``verdict`` about ``source_id`` at ``now`` inside the caller's transaction.

    When it changes the source's state: the source's ``health``, ``health_reason`` and
    ``health_since`` are set, a ``health_events`` row is written (``unhealthy`` with the reason,
    or ``recovered``) and, with a ``router``, one alert is queued per channel it names in
    :meth:`Router.health_channels`, due at once. Returns the event's id; None when the source
    was already in that state (or is unknown). Raises ``ValueError`` for a naive ``now``.
    """
    return _record(conn, source_id, verdict, aware_utc(now, "now"), router)


def sweep_stale(
    database: Engine | HasEngine,
    intervals: Mapping[str, timedelta],
    now: datetime,
    router: Router | None,
    *,
    not_before: datetime | None = None,
) -> list[int]:
    """Mark unhealthy every active, healthy source of ``intervals`` without a successful check
    for more than three times its interval (see :func:`monitor.health.staleness`).

    Time is counted from the last success, from when the source was added, or from
    ``not_before`` (the service's start, so that time the monitor itself was down does not
    count against the sources), whichever is latest. Each source is recorded in its own
    transaction, and only if no check succeeded in the meantime. Returns the ids of the events
    written; raises :class:`~monitor.errors.StorageError` when the database fails.
    """
    engine = database if isinstance(database, Engine) else database.engine
    shown, now = masked(engine.url), aware_utc(now, "now")
    floor = aware_utc(not_before, "not_before") if not_before is not None else None
    with transaction(engine, shown, "read the health of sources") as conn:
        rows = conn.execute(_candidates(intervals)).all()
    events = []
    for row in rows:
        watched = max(row.created_at, floor) if floor is not None else row.created_at
        verdict = staleness(row.last_success_at, watched, intervals[row.id], now)
        if verdict is None:
            continue
        with transaction(engine, shown, "record the health of a source") as conn:
            event = _record(conn, row.id, verdict, now, router, only_if=_still_stale(row.last_success_at))
        if event is not None:
            events.append(event)
    return events


def _candidates(intervals: Mapping[str, timedelta]) -> sa.Select[Any]:
    return sa.select(SourceRow.id, SourceRow.created_at, SourceRow.last_success_at).where(
        SourceRow.active, SourceRow.health == Health.OK.value, SourceRow.id.in_(list(intervals))
    )


def _still_stale(seen: datetime | None) -> tuple[sa.ColumnElement[bool], ...]:
    """The source is still active and no check succeeded since ``seen`` was read."""
    unchanged = SourceRow.last_success_at.is_(None) if seen is None else SourceRow.last_success_at <= seen
    return (SourceRow.active.is_(True), unchanged)


def _record(
    conn: Connection,
    source_id: str,
    verdict: Verdict,
    now: datetime,
    router: Router | None,
    *,
    only_if: Iterable[sa.ColumnElement[bool]] = (),
) -> int | None:
    if verdict.health is Health.UNHEALTHY:
        was, transition = Health.OK, Transition.UNHEALTHY
    else:
        was, transition = Health.UNHEALTHY, Transition.RECOVERED
    moved = conn.execute(
        sa.update(SourceRow)
        .where(SourceRow.id == source_id, SourceRow.health == was.value, *only_if)
        .values(health=verdict.health.value, health_reason=verdict.reason, health_since=now)
    )
    if moved.rowcount != 1:
        return None
    event_id: int = conn.execute(
        sa.insert(HealthEventRow)
        .values(source_id=source_id, at=now, state=transition.value, reason=verdict.reason)
        .returning(HealthEventRow.id)
    ).scalar_one()
    channels = router.health_channels(source_id) if router is not None else []
    queued = queue_health(conn, event_id, channels, now)
    if transition is Transition.UNHEALTHY:
        log.warning("%s: source unhealthy: %s (%d health alerts queued)", source_id, verdict.reason, queued)
    else:
        log.info("%s: source works again (%d health alerts queued)", source_id, queued)
    return event_id
