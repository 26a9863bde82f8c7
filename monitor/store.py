"""Persistence: sources, the check log, and append-only, content-addressed snapshots and changes.

The same code runs on SQLite (one file, WAL mode) and PostgreSQL (``postgresql+psycopg://``).
The tables and the engine set-up live in :mod:`monitor.database`; :meth:`Store.open` applies the
Alembic migrations in ``monitor/migrations`` unless told not to.

Every timestamp goes in and comes out as a timezone-aware UTC ``datetime``; naive ones are
rejected with ``ValueError``. Database failures surface as :class:`~monitor.errors.StorageError`
with the URL's password masked; misuse of the API (unknown source id, inconsistent writes)
raises ``KeyError`` or ``ValueError`` and leaves the database unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.alerts.outbox import Outbox, QueuedChange, queue
from monitor.alerts.routing import Router
from monitor.database import (
    Base,
    BodyRow,
    ChangeRow,
    CheckRow,
    ContentRow,
    PendingRow,
    SnapshotRow,
    SourceRow,
    aware_utc,
    insert_missing,
    masked,
    open_engine,
    stored_change,
    transaction,
)
from monitor.facts import facts_of
from monitor.health import Verdict
from monitor.healthstore import record as record_health
from monitor.models import Change, Outcome, Record, StoredChange, Validators

if TYPE_CHECKING:
    from monitor.service.claims import Claims

_CONFIGURED = (SourceRow.id, SourceRow.kind, SourceRow.url, SourceRow.active)
# Error texts are kept for diagnosis, not as archives: a bounded size keeps failing checks small too.
MAX_ERROR_CHARS = 500


def body_hash(body: bytes) -> str:
    """The sha256 hex digest of a raw body, as stored in ``sources.body_hash`` and ``bodies.hash``."""
    return hashlib.sha256(body).hexdigest()


def content_hash(record: Record) -> str:
    """The sha256 hex digest of ``record.canonical()``: the key of its ``contents`` row."""
    return hashlib.sha256(record.canonical().encode("utf-8")).hexdigest()


# --- inputs and outputs -------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotWrite:
    """A record to snapshot under ``key`` (which must equal ``record.key``).

    Skipped when its content equals the key's latest snapshot, so re-sending an unchanged record
    is harmless.
    """

    key: str
    record: Record


@dataclass(frozen=True)
class ChangeWrite:
    """A change of ``key`` (which must equal ``change.key``).

    Linked to the key's latest snapshot before the call and to the snapshot written for the same
    key in the same call; both must exist.
    """

    key: str
    change: Change


@dataclass(frozen=True)
class Hold:
    """A record of ``key`` whose change waits for the next check to confirm it."""

    key: str
    content_hash: str


# Ids per IN (...) when reading many sources: well under every driver's limit on parameters.
_READ_CHUNK = 500


@dataclass(frozen=True)
class CheckWrite:
    """Everything one check of one source produced; written by :meth:`Store.save_check`.

    ``validators`` (when not None) and ``body_hash`` (or the hash of ``body``) replace the source's
    stored ones only when ``outcome.ok``. ``body`` is stored only when a snapshot is written.
    ``error`` is kept only for failed outcomes. A failed check must carry no snapshots or changes.
    """

    source_id: str
    started_at: datetime
    duration_ms: int
    http_status: int | None
    size: int  # bytes received
    outcome: Outcome
    error: str | None = None
    validators: Validators | None = None
    body: bytes | None = None
    body_hash: str | None = None
    parse_key: str | None = None  # how the body was read; kept with body_hash when outcome.ok
    snapshots: tuple[SnapshotWrite, ...] = ()
    changes: tuple[ChangeWrite, ...] = ()
    holds: tuple[Hold, ...] = ()
    releases: tuple[str, ...] = ()  # keys whose held change is dropped (reverted, or confirmed now)
    next_check_at: datetime | None = None  # when the source is due again; None: left as stored
    lease_owner: str | None = None  # the worker whose lease on the source this check ends
    health: Verdict | None = None  # what the check says about the source's health; None: nothing


@dataclass(frozen=True)
class SourceState:
    """What the fetcher needs from the last successful check: conditional-GET validators and body hash."""

    validators: Validators
    body_hash: str | None
    consecutive_failures: int
    parse_key: str | None = None  # how the body of ``body_hash`` was read (see pipeline.parse_key)


@dataclass(frozen=True)
class StoredSnapshot:
    id: int
    key: str
    content_hash: str
    record: Record
    taken_at: datetime


@dataclass(frozen=True)
class SourceStatus:
    """One active source as ``monitor status`` shows it; ``levels`` maps each key to its current level."""

    id: str
    kind: str
    url: str
    active: bool
    last_check_at: datetime | None
    last_outcome: Outcome | None
    last_error: str | None
    consecutive_failures: int
    last_success_at: datetime | None
    last_change_at: datetime | None
    last_change_class: str | None
    levels: dict[str, int | None]


@dataclass(frozen=True)
class StoredCheck:
    id: int
    source_id: str
    started_at: datetime
    duration_ms: int
    http_status: int | None
    size: int  # bytes received
    outcome: Outcome
    error: str | None


# --- the store ----------------------------------------------------------------------------------


class Store:
    """The database of one monitor. Thread-safe: every method runs in its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._shown = masked(engine.url)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to ``url`` and, unless ``migrate`` is false, bring its schema to the latest version.

        For SQLite the file's directory is created. Raises :class:`StorageError` (URL shown with
        the password masked) when the database cannot be opened or migrated.
        """
        return cls(open_engine(url, migrate=migrate))

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def url_for_display(self) -> str:
        """The database URL with its password masked, safe for logs and messages."""
        return self._shown

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def sync_sources(self, sources: Iterable[tuple[str, str, str]], now: datetime) -> None:
        """Make the stored sources match the configured ``(id, kind, url)`` triples.

        New ids are inserted (``created_at`` = ``now``), changed kinds/URLs updated (a new URL
        forgets the validators and body hash), absent ids deactivated, returning ids reactivated.
        Raises ``ValueError`` for duplicate ids or a naive ``now``.
        """
        wanted = _unique_sources(sources)
        now = aware_utc(now, "now")
        with self._transaction("synchronise sources") as conn:
            stored = {row.id: row for row in conn.execute(sa.select(*_CONFIGURED))}
            _insert_sources(conn, {i: config for i, config in wanted.items() if i not in stored}, now)
            for source_id, (kind, url) in wanted.items():
                if source_id in stored:
                    _update_configured(conn, stored[source_id], kind, url)
            if gone := [i for i, row in stored.items() if row.active and i not in wanted]:
                conn.execute(sa.update(SourceRow).where(SourceRow.id.in_(gone)).values(active=False))

    def source_state(self, source_id: str) -> SourceState:
        """The validators and body hash of the last successful check; ``KeyError`` for an unknown id."""
        states = self.source_states([source_id])
        if source_id not in states:
            raise KeyError(source_id)
        return states[source_id]

    def source_states(self, source_ids: Collection[str]) -> dict[str, SourceState]:
        """:meth:`source_state` of several sources in one transaction; unknown ids are left out."""
        query = sa.select(
            SourceRow.id,
            SourceRow.etag,
            SourceRow.last_modified,
            SourceRow.body_hash,
            SourceRow.consecutive_failures,
            SourceRow.parse_key,
        )
        ids = list(dict.fromkeys(source_ids))
        states: dict[str, SourceState] = {}
        with self._transaction("read sources") as conn:
            for start in range(0, len(ids), _READ_CHUNK):
                chunk = ids[start : start + _READ_CHUNK]
                for row in conn.execute(query.where(SourceRow.id.in_(chunk))):
                    validators = Validators(etag=row.etag, last_modified=row.last_modified)
                    states[row.id] = SourceState(
                        validators, row.body_hash, row.consecutive_failures, row.parse_key
                    )
        return states

    def latest_snapshots(self, source_id: str) -> dict[str, StoredSnapshot]:
        """The newest snapshot of every key of a source (empty for an unknown or new source)."""
        query = (
            sa.select(
                SnapshotRow.id,
                SnapshotRow.key,
                SnapshotRow.content_hash,
                ContentRow.text,
                SnapshotRow.taken_at,
            )
            .join(ContentRow, ContentRow.hash == SnapshotRow.content_hash)
            .where(SnapshotRow.id.in_(_latest_ids(source_id)))
        )
        with self._transaction("read snapshots") as conn:
            rows = conn.execute(query).all()
        return {
            row.key: StoredSnapshot(
                row.id, row.key, row.content_hash, Record.from_json(json.loads(row.text)), row.taken_at
            )
            for row in rows
        }

    @property
    def outbox(self) -> Outbox:
        """The alert outbox in the same database."""
        return Outbox(self._engine, self._shown)

    @property
    def claims(self) -> Claims:
        """The shared schedule (leases on sources, workers) in the same database."""
        from monitor.service.claims import Claims

        return Claims(self._engine, self._shown)

    def save_check(self, check: CheckWrite, router: Router | None = None) -> int:
        """Record one check in one transaction and return its id.

        Always: a ``checks`` row, and the source's ``last_check_at``/``last_outcome``. When
        ``check.outcome.ok``: validators and body hash replaced, ``last_success_at`` set,
        ``consecutive_failures`` reset. Otherwise: ``consecutive_failures`` incremented and
        ``last_error`` set, everything else kept. Snapshots, their contents and body, and changes
        are written as described on :class:`SnapshotWrite` and :class:`ChangeWrite`. With a
        ``router``, the alerts about the changes are queued in the outbox in the same transaction.
        A ``check.health`` verdict that changes the source's state is recorded, with its health
        alerts, in the same transaction too (see :func:`monitor.healthstore.record`).

        Raises ``KeyError`` for an unknown source, ``ValueError`` for a naive ``started_at``, a
        failed check carrying snapshots or changes, mismatched keys, a body not matching
        ``body_hash``, or a change whose key gets no new snapshot or has no previous one.
        """
        return self.save_checks([check], router)[0]

    def save_checks(self, checks: Sequence[CheckWrite], router: Router | None = None) -> list[int]:
        """Record several checks in one transaction, each as :meth:`save_check` would; their ids
        in order. All or nothing: one invalid check (same errors as :meth:`save_check`) or one
        unknown source, and none is recorded. Checks of one source are written in order.

        The statements are shared: one UPDATE of ``sources`` per shape of update (executed for
        all the checks of that shape), one INSERT of every ``checks`` row."""
        if not checks:
            return []
        for check in checks:
            _validate_check(check)
        check_ids: list[int] = []
        with self._transaction("save checks" if len(checks) > 1 else "save a check") as conn:
            for run in _distinct_runs(checks):
                check_ids += _write_checks(conn, run, router)
        return check_ids

    def pending(self, source_id: str) -> dict[str, str]:
        """The held changes of a source: key -> content hash of the record waiting for confirmation."""
        query = sa.select(PendingRow.key, PendingRow.content_hash).where(PendingRow.source_id == source_id)
        with self._transaction("read held changes") as conn:
            return dict(conn.execute(query).tuples().all())

    def statuses(self) -> list[SourceStatus]:
        """Every active source with its health, last change class and current level per key, by id."""
        with self._transaction("read statuses") as conn:
            rows = conn.execute(_status_query()).all()
            levels = _current_levels(conn)
        return [_status(row, levels.get(row.id, {})) for row in rows]

    def changes(
        self, *, source_id: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[StoredChange]:
        """Changes, oldest first; optionally of one source, detected at or after ``since``.

        With ``limit``, the newest ``limit`` matching changes (still returned oldest first).
        """
        query = sa.select(ChangeRow.__table__)
        if source_id is not None:
            query = query.where(ChangeRow.source_id == source_id)
        if since is not None:
            query = query.where(ChangeRow.detected_at >= aware_utc(since, "since"))
        query = query.order_by(ChangeRow.detected_at.desc(), ChangeRow.id.desc()).limit(limit)
        with self._transaction("read changes") as conn:
            rows = conn.execute(query).all()
        return [stored_change(row) for row in reversed(rows)]

    def checks(self, source_id: str, limit: int = 50) -> list[StoredCheck]:
        """The newest ``limit`` checks of a source, newest first."""
        query = (
            sa.select(CheckRow.__table__)
            .where(CheckRow.source_id == source_id)
            .order_by(CheckRow.started_at.desc(), CheckRow.id.desc())
            .limit(limit)
        )
        with self._transaction("read checks") as conn:
            rows = conn.execute(query).all()
        return [
            StoredCheck(
                r.id,
                r.source_id,
                r.started_at,
                r.duration_ms,
                r.http_status,
                r.bytes,
                Outcome(r.outcome),
                r.error,
            )
            for r in rows
        ]

    def body(self, hash_: str) -> bytes | None:
        """The decompressed raw body stored under ``hash_``, or None when it was never stored."""
        with self._transaction("read a body") as conn:
            data = conn.execute(sa.select(BodyRow.data).where(BodyRow.hash == hash_)).scalar_one_or_none()
        return None if data is None else zlib.decompress(data)

    def latest_body(self, source_id: str) -> bytes | None:
        """The raw body of the source's newest snapshot, or None when it has none stored."""
        query = (
            sa.select(BodyRow.data)
            .join(SnapshotRow, SnapshotRow.body_hash == BodyRow.hash)
            .where(SnapshotRow.source_id == source_id)
            .order_by(SnapshotRow.id.desc())
            .limit(1)
        )
        with self._transaction("read a body") as conn:
            data = conn.execute(query).scalar_one_or_none()
        return None if data is None else zlib.decompress(data)

    def counts(self) -> dict[str, int]:
        """The number of rows in every table, by table name."""
        tables = Base.metadata.sorted_tables
        query = sa.select(
            *(sa.select(sa.func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables)
        )
        with self._transaction("count rows") as conn:
            row = conn.execute(query).one()
        return {t.name: int(row[i]) for i, t in enumerate(tables)}

    def _transaction(self, action: str) -> AbstractContextManager[Connection]:
        return transaction(self._engine, self._shown, action)


def upgrade(url: str) -> None:
    """Apply every pending migration to the database at ``url``; ``StorageError`` on failure."""
    Store.open(url, migrate=True).close()


# --- writing ------------------------------------------------------------------------------------


def _unique_sources(sources: Iterable[tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    wanted: dict[str, tuple[str, str]] = {}
    for source_id, kind, url in sources:
        if source_id in wanted:
            raise ValueError(f"duplicate source id {source_id!r}")
        wanted[source_id] = (kind, url)
    return wanted


def _insert_sources(conn: Connection, sources: Mapping[str, tuple[str, str]], now: datetime) -> None:
    if sources:
        rows = [{"id": i, "kind": kind, "url": url, "created_at": now} for i, (kind, url) in sources.items()]
        # Several workers starting together may insert the same new sources: the first one wins.
        insert_missing(conn, SourceRow, rows)


def _update_configured(conn: Connection, stored: sa.Row[Any], kind: str, url: str) -> None:
    values: dict[str, Any] = {}
    if stored.kind != kind:
        values["kind"] = kind
    if stored.url != url:
        # Validators and body hash describe the old URL's answers; keeping them would send its
        # ETag to the new URL or skip parsing a first body that happens to match.
        values |= {"url": url, "etag": None, "last_modified": None, "body_hash": None, "parse_key": None}
    if not stored.active:
        values["active"] = True
    if values:
        conn.execute(sa.update(SourceRow).where(SourceRow.id == stored.id).values(values))


def _validate_check(check: CheckWrite) -> None:
    aware_utc(check.started_at, "started_at")
    if not check.outcome.ok and (check.snapshots or check.changes or check.holds or check.releases):
        raise ValueError(f"a {check.outcome.value} check cannot carry snapshots, changes or holds")
    snapshot_keys = [s.key for s in check.snapshots]
    change_keys = [c.key for c in check.changes]
    for keys, what in ((snapshot_keys, "snapshots"), (change_keys, "changes")):
        if len(set(keys)) != len(keys):
            raise ValueError(f"{what} repeat a key: {sorted(keys)}")
    _validate_keys(check)
    if check.snapshots and check.body is not None and check.body_hash not in (None, body_hash(check.body)):
        raise ValueError(f"body_hash {check.body_hash} does not match the body")


def _validate_keys(check: CheckWrite) -> None:
    for snapshot in check.snapshots:
        if snapshot.key != snapshot.record.key:
            raise ValueError(
                f"snapshot key {snapshot.key!r} differs from its record's {snapshot.record.key!r}"
            )
    snapshot_keys = {s.key for s in check.snapshots}
    for change in check.changes:
        if change.key != change.change.key:
            raise ValueError(f"change key {change.key!r} differs from its change's {change.change.key!r}")
        if change.key not in snapshot_keys:
            raise ValueError(f"change of {change.key!r} has no snapshot in the same check")


def _stored_body_hash(check: CheckWrite) -> str | None:
    if check.body_hash is not None or check.body is None:
        return check.body_hash
    return body_hash(check.body)


def _write_checks(conn: Connection, checks: Sequence[CheckWrite], router: Router | None) -> list[int]:
    # The first statement writes, so SQLite takes its write lock before anything is read.
    _update_sources_after(conn, checks)
    inserted = conn.execute(
        sa.insert(CheckRow).returning(CheckRow.id, sort_by_parameter_order=True),
        [_check_row(check) for check in checks],
    )
    check_ids = list(inserted.scalars())
    for check, check_id in zip(checks, check_ids, strict=True):
        if check.snapshots:
            change_ids = _write_snapshots(conn, check, check_id)
            if router is not None and router.channels and change_ids:
                queue(conn, router, check.source_id, _queued(check, change_ids), check.started_at)
        if check.holds or check.releases:
            _write_pending(conn, check)
    _record_health_changes(conn, checks, router)
    return check_ids


def _update_sources_after(conn: Connection, checks: Sequence[CheckWrite]) -> None:
    """Each check's update of its source, grouped by shape: one executemany per shape. The
    sources must be distinct (the order of two updates of one source would matter)."""
    shapes: dict[_Shape, list[dict[str, Any]]] = {}
    for check in checks:
        shape, params = _source_update(check)
        shapes.setdefault(shape, []).append(params)
    complete = True
    for shape, rows in shapes.items():
        result = conn.execute(_source_update_statement(shape), rows)
        complete = complete and conn.dialect.supports_sane_multi_rowcount and result.rowcount == len(rows)
    if complete:
        return
    ids = {check.source_id for check in checks}
    known = set(conn.execute(sa.select(SourceRow.id).where(SourceRow.id.in_(ids))).scalars())
    if unknown := ids - known:
        raise KeyError(min(unknown))  # the transaction is rolled back


def _distinct_runs(checks: Sequence[CheckWrite]) -> list[Sequence[CheckWrite]]:
    """``checks`` cut, in order, into runs in which no source appears twice."""
    runs: list[Sequence[CheckWrite]] = []
    start, seen = 0, set[str]()
    for index, check in enumerate(checks):
        if check.source_id in seen:
            runs.append(checks[start:index])
            start, seen = index, set()
        seen.add(check.source_id)
    runs.append(checks[start:])
    return runs


# (the columns set from parameters, failed check, ends a lease)
_Shape = tuple[tuple[str, ...], bool, bool]


def _source_update(check: CheckWrite) -> tuple[_Shape, dict[str, Any]]:
    started = check.started_at
    values: dict[str, Any] = {"last_check_at": started, "last_outcome": check.outcome.value}
    if check.changes:
        values["last_change_at"] = started
    if check.outcome.ok:
        values |= {"consecutive_failures": 0, "last_error": None, "last_success_at": started}
        if check.validators is not None:
            values |= {"etag": check.validators.etag, "last_modified": check.validators.last_modified}
        if (hash_ := _stored_body_hash(check)) is not None:
            values["body_hash"] = hash_
            values["parse_key"] = check.parse_key
    else:
        values["last_error"] = _error_text(check)
    if check.next_check_at is not None:
        values["next_check_at"] = aware_utc(check.next_check_at, "next_check_at")
    params = {f"p_{name}": value for name, value in values.items()}
    params["p_source_id"] = check.source_id
    if check.lease_owner is not None:
        params["p_lease_owner"] = check.lease_owner
    return (tuple(sorted(values)), not check.outcome.ok, check.lease_owner is not None), params


@functools.cache
def _source_update_statement(shape: _Shape) -> sa.Update:
    columns, failed, ends_lease = shape
    table = SourceRow.__table__.c
    values: dict[str, Any] = {name: sa.bindparam(f"p_{name}", type_=table[name].type) for name in columns}
    if failed:
        values["consecutive_failures"] = SourceRow.consecutive_failures + 1
    if ends_lease:
        mine = SourceRow.lease_owner == sa.bindparam("p_lease_owner", type_=table["lease_owner"].type)
        values |= {
            "lease_owner": sa.case((mine, None), else_=SourceRow.lease_owner),
            "lease_until": sa.case((mine, None), else_=SourceRow.lease_until),
        }
    return sa.update(SourceRow).where(SourceRow.id == sa.bindparam("p_source_id")).values(values)


def _record_health_changes(conn: Connection, checks: Sequence[CheckWrite], router: Router | None) -> None:
    """Record the verdicts that change their source's state (most checks confirm it: one read)."""
    judged = [check for check in checks if check.health is not None]
    if not judged:
        return
    # The sources' rows were updated above: no other writer can change their health until commit.
    query = sa.select(SourceRow.id, SourceRow.health).where(SourceRow.id.in_({c.source_id for c in judged}))
    health = dict(conn.execute(query).tuples().all())
    for check in judged:
        assert check.health is not None
        state = check.health.health.value
        if health.get(check.source_id) == state:
            continue  # a verdict that changes nothing (the usual one) writes nothing
        if record_health(conn, check.source_id, check.health, check.started_at, router) is not None:
            health[check.source_id] = state


def _error_text(check: CheckWrite) -> str | None:
    if check.outcome.ok or check.error is None:
        return None
    return check.error[:MAX_ERROR_CHARS]


def _check_row(check: CheckWrite) -> dict[str, Any]:
    return {
        "source_id": check.source_id,
        "started_at": check.started_at,
        "duration_ms": check.duration_ms,
        "http_status": check.http_status,
        "bytes": check.size,
        "outcome": check.outcome.value,
        "error": _error_text(check),
    }


def _write_snapshots(conn: Connection, check: CheckWrite, check_id: int) -> dict[str, int]:
    """Returns the ids of the changes written, by key."""
    hashes = {s.key: content_hash(s.record) for s in check.snapshots}
    latest = _latest_by_key(conn, check.source_id, hashes.keys())
    fresh = [s for s in check.snapshots if latest.get(s.key, (0, ""))[1] != hashes[s.key]]
    _check_change_links(check, latest, {s.key for s in fresh})
    if not fresh:
        return {}
    insert_missing(conn, ContentRow, [{"hash": hashes[s.key], "text": s.record.canonical()} for s in fresh])
    stored_body = _store_body(conn, check)
    rows = [_snapshot_row(check, s, hashes[s.key], stored_body, check_id) for s in fresh]
    inserted = conn.execute(sa.insert(SnapshotRow).returning(SnapshotRow.key, SnapshotRow.id), rows)
    ids = dict(inserted.tuples().all())
    if check.changes:
        changes = [_change_row(check, c, latest[c.key][0], ids[c.key]) for c in check.changes]
        written = conn.execute(sa.insert(ChangeRow).returning(ChangeRow.key, ChangeRow.id), changes)
        return dict(written.tuples().all())
    return {}


def _queued(check: CheckWrite, change_ids: Mapping[str, int]) -> list[QueuedChange]:
    countries = {s.key: s.record.country for s in check.snapshots}
    return [
        QueuedChange(change_ids[c.key], c.key, countries.get(c.key), c.change.change_class)
        for c in check.changes
    ]


def _write_pending(conn: Connection, check: CheckWrite) -> None:
    keys = [*check.releases, *(hold.key for hold in check.holds)]
    conn.execute(
        sa.delete(PendingRow).where(PendingRow.source_id == check.source_id, PendingRow.key.in_(keys))
    )
    if check.holds:
        rows = [
            {
                "source_id": check.source_id,
                "key": h.key,
                "content_hash": h.content_hash,
                "first_seen": check.started_at,
            }
            for h in check.holds
        ]
        conn.execute(sa.insert(PendingRow), rows)


def _check_change_links(
    check: CheckWrite, latest: Mapping[str, tuple[int, str]], fresh: Collection[str]
) -> None:
    for change in check.changes:
        if change.key not in latest:
            raise ValueError(f"change of {change.key!r} has no previous snapshot")
        if change.key not in fresh:
            raise ValueError(f"change of {change.key!r}, but its content equals the latest snapshot")


def _store_body(conn: Connection, check: CheckWrite) -> str | None:
    if check.body is None:
        return None
    hash_ = body_hash(check.body) if check.body_hash is None else check.body_hash
    row = {"hash": hash_, "size": len(check.body), "data": zlib.compress(check.body, 6)}
    insert_missing(conn, BodyRow, [row])
    return hash_


def _snapshot_row(
    check: CheckWrite, snapshot: SnapshotWrite, hash_: str, body: str | None, check_id: int
) -> dict[str, Any]:
    return {
        "source_id": check.source_id,
        "key": snapshot.key,
        "content_hash": hash_,
        "body_hash": body,
        "level": snapshot.record.level,
        "taken_at": check.started_at,
        "check_id": check_id,
        "country": snapshot.record.country,
        "facts": facts_of(snapshot.record.to_json()),
    }


def _change_row(check: CheckWrite, write: ChangeWrite, previous_id: int, snapshot_id: int) -> dict[str, Any]:
    change = write.change
    return {
        "source_id": check.source_id,
        "key": write.key,
        "previous_snapshot_id": previous_id,
        "snapshot_id": snapshot_id,
        "detected_at": check.started_at,
        "change_class": change.change_class.value,
        "reasons": list(change.reasons),
        "diff": change.diff,
        "level_before": change.level_before,
        "level_after": change.level_after,
        "published_at": change.published_at,
    }


# --- reading ------------------------------------------------------------------------------------


def _latest_ids(source_id: str | None = None, keys: Collection[str] | None = None) -> sa.Select[tuple[int]]:
    """The ids of the newest snapshot per (source, key), optionally of one source and some keys."""
    query = sa.select(sa.func.max(SnapshotRow.id))
    if source_id is not None:
        query = query.where(SnapshotRow.source_id == source_id)
    if keys is not None:
        query = query.where(SnapshotRow.key.in_(keys))
    return query.group_by(SnapshotRow.source_id, SnapshotRow.key)


def _latest_by_key(conn: Connection, source_id: str, keys: Collection[str]) -> dict[str, tuple[int, str]]:
    query = sa.select(SnapshotRow.key, SnapshotRow.id, SnapshotRow.content_hash).where(
        SnapshotRow.id.in_(_latest_ids(source_id, list(keys)))
    )
    return {key: (id_, hash_) for key, id_, hash_ in conn.execute(query).tuples()}


def _status_query() -> sa.Select[Any]:
    last_class = (
        sa.select(ChangeRow.change_class)
        .where(ChangeRow.source_id == SourceRow.id)
        .order_by(ChangeRow.detected_at.desc(), ChangeRow.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    columns = [
        c
        for c in SourceRow.__table__.c
        if c.name not in ("etag", "last_modified", "body_hash", "parse_key", "created_at")
    ]
    return (
        sa.select(*columns, last_class.label("last_change_class"))
        .where(SourceRow.active)
        .order_by(SourceRow.id)
    )


def _current_levels(conn: Connection) -> dict[str, dict[str, int | None]]:
    query = (
        sa.select(SnapshotRow.source_id, SnapshotRow.key, SnapshotRow.level)
        .join(SourceRow, SourceRow.id == SnapshotRow.source_id)
        .where(SourceRow.active, SnapshotRow.id.in_(_latest_ids()))
        .order_by(SnapshotRow.source_id, SnapshotRow.key)
    )
    levels: dict[str, dict[str, int | None]] = {}
    for source_id, key, level in conn.execute(query).tuples():
        levels.setdefault(source_id, {})[key] = level
    return levels


def _status(row: sa.Row[Any], levels: dict[str, int | None]) -> SourceStatus:
    return SourceStatus(
        id=row.id,
        kind=row.kind,
        url=row.url,
        active=row.active,
        last_check_at=row.last_check_at,
        last_outcome=None if row.last_outcome is None else Outcome(row.last_outcome),
        last_error=row.last_error,
        consecutive_failures=row.consecutive_failures,
        last_success_at=row.last_success_at,
        last_change_at=row.last_change_at,
        last_change_class=row.last_change_class,
        levels=levels,
    )
