"""Shared scheduling in the database: which worker checks which source, and until when.

Every worker pointed at one database sees the same ``sources.next_check_at``. A worker takes a
due source by writing itself into ``lease_owner`` with a ``lease_until`` (one statement; ``FOR
UPDATE SKIP LOCKED`` on PostgreSQL, so workers never wait on each other's rows); the check that
follows moves ``next_check_at`` forward and ends the lease in the transaction that records it.
A worker renews the leases of its checks in flight with its heartbeat; if it dies, its leases
run out and any other worker takes the sources.

The ``workers`` table lists the processes with their heartbeat, for ``monitor status`` and
``/healthz``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.database import SourceRow, WorkerRow, aware_utc, transaction


def new_worker_id() -> str:
    """``host:pid:random``: unique even when a pid is reused after a restart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class SourceTiming:
    """What a worker needs to know to wake up for a source again."""

    source_id: str
    active: bool
    next_check_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    health: str = "ok"
    health_reason: str | None = None
    health_since: datetime | None = None

    def wake_at(self, now: datetime) -> datetime:
        """The earliest time worth trying to take the source: when it is due, and not held."""
        due = self.next_check_at or now
        if self.lease_until is not None and self.lease_until > now:
            due = max(due, self.lease_until)
        return max(due, now)

    def held_past_due(self, now: datetime) -> bool:
        """Due, but held by a worker's lease: whoever wakes when the lease ends takes it over."""
        due = self.next_check_at or now
        return self.lease_until is not None and self.lease_until > max(due, now)


@dataclass(frozen=True)
class Worker:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    state: str  # running, stopping, stopped
    sources: int  # checks in flight at the last heartbeat

    def alive(self, now: datetime, heartbeat: timedelta) -> bool:
        """Running, with a heartbeat no older than three beats."""
        return self.state != "stopped" and now - self.heartbeat_at <= heartbeat * 3


class Claims:
    """The scheduling side of one database. Thread-safe: every method is its own transaction."""

    def __init__(self, engine: Engine, shown: str) -> None:
        self._engine = engine
        self._shown = shown

    def claim(
        self,
        owner: str,
        horizons: Mapping[str, datetime],
        now: datetime,
        lease: timedelta,
    ) -> list[str]:
        """Take the sources of ``horizons`` that are active, due by their horizon (never
        checked counts as due) and not held by a live lease: hold them for ``owner`` until
        ``now + lease``. Returns the ids taken, which no other worker can take meanwhile."""
        if not horizons:
            return []
        now = aware_utc(now, "now")
        # One condition per distinct horizon, not per source: a cycle over thousands of sources
        # shares one horizon, and a deep OR chain overflows SQLite's expression depth.
        by_horizon: dict[datetime, list[str]] = {}
        for source_id, until in horizons.items():
            by_horizon.setdefault(aware_utc(until), []).append(source_id)
        due = sa.or_(
            *(
                sa.and_(
                    SourceRow.id.in_(ids),
                    sa.or_(SourceRow.next_check_at.is_(None), SourceRow.next_check_at <= until),
                )
                for until, ids in by_horizon.items()
            )
        )
        free = sa.or_(SourceRow.lease_until.is_(None), SourceRow.lease_until <= now)
        candidates = (
            sa.select(SourceRow.id)
            .where(SourceRow.active, due, free)
            .order_by(SourceRow.id)
            .with_for_update(skip_locked=True)
        )
        taken = (
            sa.update(SourceRow)
            .where(SourceRow.id.in_(candidates.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(SourceRow.id)
        )
        with self._transaction("take due sources") as conn:
            return sorted(conn.execute(taken).scalars())

    def renew(self, owner: str, source_ids: Collection[str], now: datetime, lease: timedelta) -> int:
        """Extend ``owner``'s leases on ``source_ids`` to ``now + lease``; returns how many it still held."""
        if not source_ids:
            return 0
        query = (
            sa.update(SourceRow)
            .where(SourceRow.lease_owner == owner, SourceRow.id.in_(list(source_ids)))
            .values(lease_until=aware_utc(now, "now") + lease)
        )
        with self._transaction("renew leases on sources") as conn:
            return int(conn.execute(query).rowcount)

    def release(self, owner: str) -> int:
        """End every lease ``owner`` holds (checks abandoned at shutdown): others may take them now."""
        query = (
            sa.update(SourceRow)
            .where(SourceRow.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )
        with self._transaction("release leases on sources") as conn:
            return int(conn.execute(query).rowcount)

    def make_due(self, source_ids: Collection[str]) -> None:
        """Make sources due now (their configuration changed): the next wake-up checks them."""
        if source_ids:
            query = sa.update(SourceRow).where(SourceRow.id.in_(list(source_ids))).values(next_check_at=None)
            with self._transaction("reschedule sources") as conn:
                conn.execute(query)

    def timings(self, source_ids: Collection[str] | None = None) -> dict[str, SourceTiming]:
        """The scheduling state of ``source_ids`` (all sources when None), by id."""
        query = sa.select(
            SourceRow.id,
            SourceRow.active,
            SourceRow.next_check_at,
            SourceRow.lease_owner,
            SourceRow.lease_until,
            SourceRow.health,
            SourceRow.health_reason,
            SourceRow.health_since,
        )
        if source_ids is not None:
            query = query.where(SourceRow.id.in_(list(source_ids)))
        with self._transaction("read the schedule") as conn:
            rows = conn.execute(query).all()
        return {row.id: SourceTiming(*row) for row in rows}

    def beat(self, worker_id: str, started_at: datetime, now: datetime, state: str, sources: int) -> None:
        """Record that ``worker_id`` is alive (or stopping / stopped) with ``sources`` checks in flight."""
        host, pid, _ = worker_id.rsplit(":", 2)
        values: dict[str, Any] = {
            "heartbeat_at": aware_utc(now, "now"),
            "state": state,
            "sources": sources,
        }
        with self._transaction("record the worker's heartbeat") as conn:
            updated = conn.execute(sa.update(WorkerRow).where(WorkerRow.id == worker_id).values(values))
            if updated.rowcount == 0:
                row = {"id": worker_id, "host": host, "pid": int(pid), "started_at": started_at, **values}
                conn.execute(sa.insert(WorkerRow).values(row))

    def workers(self) -> list[Worker]:
        """Every worker recorded, newest heartbeat first."""
        query = sa.select(WorkerRow.__table__).order_by(WorkerRow.heartbeat_at.desc())
        with self._transaction("read workers") as conn:
            return [Worker(**row._mapping) for row in conn.execute(query)]

    def forget_workers(self, before: datetime) -> int:
        """Delete the rows of workers not heard of since ``before`` (stopped or dead long ago)."""
        query = sa.delete(WorkerRow).where(WorkerRow.heartbeat_at < aware_utc(before, "before"))
        with self._transaction("forget old workers") as conn:
            return int(conn.execute(query).rowcount)

    def _transaction(self, action: str) -> AbstractContextManager[Connection]:
        return transaction(self._engine, self._shown, action)
