"""The database underneath the store: table definitions, engine set-up and schema migrations.

The tables mirror the latest migration in ``monitor/migrations/versions`` (a test compares them).
Timestamps use :class:`UtcDateTime`: timezone-aware UTC in and out on every backend.
"""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from monitor.errors import StorageError
from monitor.models import StoredChange

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
# How long a write that must not be lost (an alert recorded as sent) is tried again while the
# database does not answer.
RETRY_WITHIN = 30.0
# Any constant works; it only has to be the same for every process migrating the same database.
_MIGRATION_LOCK_ID = 0x6D6F6E69746F72

T = TypeVar("T")
# What SQLite says when its file cannot be used right now, as opposed to a wrong statement.
_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o")


def aware_utc(value: datetime, name: str = "datetime") -> datetime:
    """``value`` converted to UTC; raises ``ValueError`` when it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend; SQLite stores them as naive UTC text."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = aware_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- tables -------------------------------------------------------------------------------------

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid
_Hash = sa.String(64)

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}  # noqa: RUF012


class SourceRow(Base):
    """One configured source; rows outlive their config entry (``active`` false) to keep history."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[str]
    url: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    etag: Mapped[str | None] = mapped_column(sa.Text)
    last_modified: Mapped[str | None]
    body_hash: Mapped[str | None] = mapped_column(_Hash)
    parse_key: Mapped[str | None] = mapped_column(_Hash)  # see pipeline.parse_key
    last_check_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    consecutive_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    last_success_at: Mapped[datetime | None]
    last_change_at: Mapped[datetime | None]
    # Shared scheduling: when the next check is due, and which worker holds the source until when.
    next_check_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None]
    lease_until: Mapped[datetime | None]
    # "ok" or "unhealthy"; a change of state is recorded in ``health_events`` and alerted once.
    health: Mapped[str] = mapped_column(default="ok", server_default="ok")
    health_reason: Mapped[str | None] = mapped_column(sa.Text)
    health_since: Mapped[datetime | None]


class CheckRow(Base):
    """The check log: one narrow row per fetch attempt."""

    __tablename__ = "checks"
    __table_args__ = (sa.Index("ix_checks_source_started", "source_id", "started_at"),)

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    source_id: Mapped[str] = mapped_column(sa.ForeignKey("sources.id"))
    started_at: Mapped[datetime]
    duration_ms: Mapped[int]
    http_status: Mapped[int | None]
    bytes: Mapped[int]
    outcome: Mapped[str]
    error: Mapped[str | None] = mapped_column(sa.Text)


class BodyRow(Base):
    """A raw fetched body, zlib-compressed, keyed by the sha256 of the uncompressed bytes."""

    __tablename__ = "bodies"

    hash: Mapped[str] = mapped_column(_Hash, primary_key=True)
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class ContentRow(Base):
    """A record's canonical JSON, keyed by its sha256."""

    __tablename__ = "contents"

    hash: Mapped[str] = mapped_column(_Hash, primary_key=True)
    text: Mapped[str] = mapped_column(sa.Text)


class SnapshotRow(Base):
    """Append-only: a new row only when a key's content differs from its latest snapshot."""

    __tablename__ = "snapshots"
    __table_args__ = (
        sa.Index("ix_snapshots_latest", "source_id", "key", "id"),
        sa.Index("ix_snapshots_country", "country"),
    )

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    source_id: Mapped[str] = mapped_column(sa.ForeignKey("sources.id"))
    key: Mapped[str]
    content_hash: Mapped[str] = mapped_column(_Hash, sa.ForeignKey("contents.hash"))
    body_hash: Mapped[str | None] = mapped_column(_Hash, sa.ForeignKey("bodies.hash"))
    level: Mapped[int | None]
    taken_at: Mapped[datetime]
    check_id: Mapped[int] = mapped_column(_Id, sa.ForeignKey("checks.id"))
    # The record's country and its facts (monitor.facts): what a history reads, without the content.
    country: Mapped[str | None]
    facts: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)


class ChangeRow(Base):
    """A classified difference between two snapshots of one key."""

    __tablename__ = "changes"
    __table_args__ = (
        sa.Index("ix_changes_source_detected", "source_id", "detected_at"),
        sa.Index("ix_changes_detected", "detected_at"),
    )

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    source_id: Mapped[str] = mapped_column(sa.ForeignKey("sources.id"))
    key: Mapped[str]
    previous_snapshot_id: Mapped[int | None] = mapped_column(_Id, sa.ForeignKey("snapshots.id"))
    snapshot_id: Mapped[int] = mapped_column(_Id, sa.ForeignKey("snapshots.id"))
    detected_at: Mapped[datetime]
    change_class: Mapped[str]
    reasons: Mapped[list[str]] = mapped_column(sa.JSON)
    diff: Mapped[str] = mapped_column(sa.Text)
    level_before: Mapped[int | None]
    level_after: Mapped[int | None]
    published_at: Mapped[datetime | None]  # the publisher's own update time of the new record


class PendingRow(Base):
    """A change held until the next check confirms it (a level change its text does not support)."""

    __tablename__ = "pending_changes"

    source_id: Mapped[str] = mapped_column(sa.ForeignKey("sources.id"), primary_key=True)
    key: Mapped[str] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(_Hash)
    first_seen: Mapped[datetime]


class AlertRow(Base):
    """The outbox: one message to deliver to one channel, written with the change that causes it.

    An alert is about a change (``change_id``) or a source's health event (``health_event_id``);
    a failure report carries those of the alert it reports on. ``key`` is unique, so a (change,
    channel) or (health event, channel) pair is queued once; ``status`` goes ``pending`` ->
    ``sent`` (never back) or ``failed`` (after the channel's last attempt; ``monitor alerts retry``
    makes it ``pending`` again). A pending row is sendable from ``next_attempt_at`` on; a worker
    that takes it moves that time forward by a lease, so another worker leaves it alone while it
    is in flight and picks it up again if the first one dies.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        sa.Index("ix_alerts_due", "status", "next_attempt_at"),
        sa.Index("ix_alerts_change_id", "change_id"),
    )

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    key: Mapped[str] = mapped_column(unique=True)
    channel: Mapped[str]
    # "change", "health" (a source stopped or started working again), or "failure": a report
    # that another alert could not be delivered.
    purpose: Mapped[str]
    change_id: Mapped[int | None] = mapped_column(_Id, sa.ForeignKey("changes.id"))
    health_event_id: Mapped[int | None] = mapped_column(_Id, sa.ForeignKey("health_events.id"))
    about_alert_id: Mapped[int | None] = mapped_column(_Id, sa.ForeignKey("alerts.id"))
    change_class: Mapped[str | None]  # the change's class; None for a health alert
    batch: Mapped[str | None]  # the digest period this alert is part of, None: sent on its own
    status: Mapped[str] = mapped_column(default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)


class HealthEventRow(Base):
    """A source becoming unhealthy (with the reason) or recovering: what health alerts are about."""

    __tablename__ = "health_events"
    __table_args__ = (sa.Index("ix_health_events_source_at", "source_id", "at"),)

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    source_id: Mapped[str] = mapped_column(sa.ForeignKey("sources.id"))
    at: Mapped[datetime]
    state: Mapped[str]  # "unhealthy" or "recovered"
    reason: Mapped[str | None] = mapped_column(sa.Text)


class WorkerRow(Base):
    """One ``monitor run`` process, kept alive by its heartbeat; ``monitor status`` lists them."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(primary_key=True)
    host: Mapped[str]
    pid: Mapped[int]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    state: Mapped[str]  # "running", "stopping" or "stopped"
    sources: Mapped[int] = mapped_column(default=0, server_default="0")  # checks in flight


# --- opening and migrating ----------------------------------------------------------------------


def open_engine(url: str, *, migrate: bool) -> Engine:
    """An engine for ``url`` after a first connection, with the schema migrated to head if asked.

    ``postgres://`` and ``postgresql://`` mean the psycopg 3 driver. For SQLite, the file's
    directory is created and every connection gets WAL mode, a busy timeout and foreign keys.
    Raises :class:`StorageError`, naming the URL with its password masked.
    """
    return _connect(_parse_url(url), migrate=migrate)


def _parse_url(url: str) -> URL:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        # The text may hold a password, and unparsed it cannot be masked: it is not repeated.
        raise StorageError(
            "invalid database URL; expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StorageError(f"unsupported database {masked(parsed)}: use SQLite or PostgreSQL")
    return parsed


def _connect(url: URL, *, migrate: bool) -> Engine:
    engine: Engine | None = None
    try:
        _prepare_sqlite(url)
        engine = _create_engine(url)
        if migrate:
            _migrate(engine)
        else:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
    except (OSError, ImportError, sa.exc.SQLAlchemyError, CommandError) as exc:
        if engine is not None:
            engine.dispose()
        raise StorageError(f"cannot open the database {masked(url)}: {describe_error(exc, url)}") from exc
    return engine


def _prepare_sqlite(url: URL) -> None:
    if url.get_backend_name() != "sqlite":
        return
    if sqlite3.sqlite_version_info < (3, 35):
        raise StorageError(f"SQLite {sqlite3.sqlite_version} is too old: the store needs 3.35 (RETURNING)")
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _create_engine(url: URL) -> Engine:
    # A PostgreSQL server restarted meanwhile leaves the pool's connections dead: each is tested
    # when taken out of the pool and replaced, instead of failing the first transaction on it.
    engine = sa.create_engine(url, pool_pre_ping=url.get_backend_name() == "postgresql")
    if url.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        # In WAL mode NORMAL loses at most the last commits on power loss, never consistency,
        # and spares an fsync on each of the many small check transactions.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    # Switching a new file to WAL needs an exclusive lock and SQLite answers "locked" at once,
    # without its busy handler, while another connection holds one: wait here instead.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _migrate(engine: Engine) -> None:
    config = Config(stdout=io.StringIO())
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    with engine.begin() as conn:
        _lock_for_migration(conn)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _lock_for_migration(conn: Connection) -> None:
    """Serialise concurrent openers so only one creates the schema and the others see it done."""
    if conn.dialect.name == "sqlite":
        # pysqlite does not begin a transaction before DDL; an explicit one makes it atomic too.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_ID)))


def masked(url: URL) -> str:
    """``url`` as text with its password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def describe_error(exc: BaseException, url: URL) -> str:
    """The driver's one-line message for ``exc``, with ``url``'s password masked should it appear."""
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else None
    text = " ".join(str(orig or exc).split())
    return text.replace(url.password, "***") if isinstance(url.password, str) and url.password else text


@contextmanager
def transaction(engine: Engine, shown: str, action: str) -> Iterator[Connection]:
    """One transaction; a database error becomes a StorageError saying what could not be done
    where (``shown``: the URL with its password masked)."""
    try:
        with engine.begin() as conn:
            yield conn
    except sa.exc.SQLAlchemyError as exc:
        raise StorageError(f"cannot {action} in {shown}: {describe_error(exc, engine.url)}") from exc


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (a :class:`StorageError` or what caused it) says the database cannot be
    used right now, rather than that a statement is wrong: the server is down or unreachable,
    the connection was lost, the pool is exhausted, or SQLite's file stayed locked past the busy
    timeout. Worth waiting for and trying again; the other errors are not."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sa.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, sa.exc.TimeoutError | sa.exc.DisconnectionError | sa.exc.InterfaceError):
            return True
        if isinstance(seen, sa.exc.OperationalError):
            # SQLite reports a wrong statement ("no such table") as an operational error too.
            if not isinstance(seen.orig, sqlite3.Error):
                return True
            return any(word in str(seen.orig).lower() for word in _SQLITE_UNAVAILABLE)
        seen = seen.__cause__
    return False


def retry_unavailable(
    work: Callable[[], T],
    *,
    within: float = RETRY_WITHIN,
    first: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``work()``, tried again with exponential backoff (from ``first`` seconds, at most 2 s
    apart) while it raises a StorageError for which :func:`unavailable` holds, for up to
    ``within`` seconds; then that error is raised. Only for work that may run twice: an
    idempotent write, or a transaction whose commit is all or nothing either way."""
    deadline = time.monotonic() + within
    pause = first
    while True:
        try:
            return work()
        except StorageError as exc:
            if not unavailable(exc) or time.monotonic() + pause > deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, 2.0)


def stored_change(c: sa.Row[Any]) -> StoredChange:
    """A ``changes`` row as the model the rest of the code reads."""
    return StoredChange(
        id=c.id,
        source_id=c.source_id,
        key=c.key,
        detected_at=c.detected_at,
        change_class=c.change_class,
        reasons=tuple(c.reasons),
        diff=c.diff,
        level_before=c.level_before,
        level_after=c.level_after,
        previous_snapshot_id=c.previous_snapshot_id,
        snapshot_id=c.snapshot_id,
        published_at=c.published_at,
    )


def insert_missing(conn: Connection, table: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, leaving alone those whose primary or unique key is already stored."""
    statement: sa.Insert
    if conn.dialect.name == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing()
    conn.execute(statement, rows)
