"""The store's contract, run against every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from monitor.database import Base
from monitor.errors import StorageError
from monitor.models import Change, ChangeClass, Outcome, Record, Section, Validators
from monitor.store import (
    ChangeWrite,
    CheckWrite,
    Hold,
    SnapshotWrite,
    Store,
    body_hash,
    content_hash,
    upgrade,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SOURCE = "uk-fcdo"
ETAG = Validators(etag='"v1"')
TABLES = {
    "sources",
    "checks",
    "bodies",
    "contents",
    "snapshots",
    "changes",
    "pending_changes",
    "alerts",
    "health_events",
    "workers",
}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        opened.sync_sources([(SOURCE, "uk_fcdo", "https://example.org/advice")], T0)
        yield opened


def record(key: str = "FR", level: int | None = 1, text: str = "Normal precautions.") -> Record:
    return Record(
        key=key,
        title=f"Advice for {key}",
        url=f"https://example.org/{key}",
        level=level,
        sections=(Section("summary", text),),
    )


def check(
    at: datetime,
    outcome: Outcome = Outcome.UNCHANGED,
    *,
    body: bytes | None = b"<html>advice</html>",
    snapshots: tuple[SnapshotWrite, ...] = (),
    changes: tuple[ChangeWrite, ...] = (),
    error: str | None = None,
    validators: Validators | None = ETAG,
) -> CheckWrite:
    return CheckWrite(
        source_id=SOURCE,
        started_at=at,
        duration_ms=120,
        http_status=200 if outcome.ok else 503,
        size=len(body or b""),
        outcome=outcome,
        error=error,
        validators=validators,
        body=body,
        body_hash=body_hash(body) if body is not None else None,
        snapshots=snapshots,
        changes=changes,
    )


def change_of(
    before: Record, after: Record, change_class: ChangeClass = ChangeClass.HEIGHTENED
) -> ChangeWrite:
    change = Change(after.key, change_class, ("level raised",), "-old\n+new", before.level, after.level)
    return ChangeWrite(after.key, change)


def baseline(store: Store, *records: Record, at: datetime = T0) -> int:
    snapshots = tuple(SnapshotWrite(r.key, r) for r in records)
    return store.save_check(check(at, Outcome.NEW, snapshots=snapshots))


def changed(
    store: Store, before: Record, after: Record, at: datetime, body: bytes = b"<html>v2</html>"
) -> int:
    write = check(
        at,
        Outcome.CHANGED,
        body=body,
        snapshots=(SnapshotWrite(after.key, after),),
        changes=(change_of(before, after),),
    )
    return store.save_check(write)


# --- schema -------------------------------------------------------------------------------------


def test_migrations_create_every_table_and_are_idempotent(database_url: str) -> None:
    upgrade(database_url)
    with Store.open(database_url) as first:
        tables = set(sa.inspect(first.engine).get_table_names())
    with Store.open(database_url) as second:
        assert second.counts() == dict.fromkeys(TABLES, 0)
        with second.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0006"
    assert tables == TABLES | {"alembic_version"}


def test_migrations_match_the_table_definitions(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrate_false_opens_an_already_migrated_database(database_url: str) -> None:
    upgrade(database_url)
    with Store.open(database_url, migrate=False) as store:
        assert store.counts()["sources"] == 0


def test_concurrent_openers_of_a_new_database_migrate_it_once(database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda _: upgrade(database_url), range(6)))
    with Store.open(database_url, migrate=False) as store:
        assert store.counts() == dict.fromkeys(TABLES, 0)


# --- sources ------------------------------------------------------------------------------------


def test_sync_sources_inserts_updates_deactivates_and_reactivates(store: Store) -> None:
    store.sync_sources(
        [(SOURCE, "uk_fcdo", "https://example.org/advice"), ("msc", "html", "https://msc.test/")], T0
    )
    assert [s.id for s in store.statuses()] == ["msc", SOURCE]

    store.sync_sources([("msc", "rss", "https://msc.test/")], T0)
    statuses = store.statuses()
    assert [(s.id, s.kind, s.active) for s in statuses] == [("msc", "rss", True)]
    assert store.counts()["sources"] == 2  # the removed source stays, inactive, for its history

    store.sync_sources(
        [("msc", "rss", "https://msc.test/"), (SOURCE, "uk_fcdo", "https://example.org/advice")], T0
    )
    assert [s.id for s in store.statuses()] == ["msc", SOURCE]


def test_workers_starting_together_synchronise_the_same_new_sources(database_url: str) -> None:
    upgrade(database_url)
    sources = [(f"s{i:03d}", "rss", f"https://example.org/{i}") for i in range(200)]
    stores = [Store.open(database_url, migrate=False) for _ in range(4)]
    start = threading.Barrier(len(stores))

    def sync(store: Store) -> None:
        start.wait()
        store.sync_sources(sources, T0)

    try:
        with ThreadPoolExecutor(max_workers=len(stores)) as pool:
            list(pool.map(sync, stores))  # re-raises a worker's error
        assert [s.id for s in stores[0].statuses()] == [i for i, _, _ in sources]
    finally:
        for store in stores:
            store.close()


def test_sync_sources_rejects_duplicate_ids(store: Store) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        store.sync_sources([("a", "rss", "https://a.test/"), ("a", "rss", "https://b.test/")], T0)


def test_a_new_url_forgets_validators_and_body_hash(store: Store) -> None:
    store.save_check(
        check(T0, validators=Validators(etag='"abc"', last_modified="Sun, 01 Mar 2026 10:00:00 GMT"))
    )
    store.sync_sources([(SOURCE, "other_kind", "https://example.org/advice")], T0)
    assert store.source_state(SOURCE).validators.etag == '"abc"'  # a kind change alone keeps them

    store.sync_sources([(SOURCE, "other_kind", "https://example.org/new-advice")], T0)
    state = store.source_state(SOURCE)
    assert state.validators == Validators()
    assert state.body_hash is None


def test_unknown_source_raises_key_error(store: Store) -> None:
    with pytest.raises(KeyError):
        store.source_state("nope")
    with pytest.raises(KeyError):
        store.save_check(CheckWrite("nope", T0, 1, 200, 0, Outcome.UNCHANGED))
    assert store.counts()["checks"] == 0


# --- checks and snapshots -----------------------------------------------------------------------


def test_unchanged_checks_add_check_rows_only(store: Store) -> None:
    france = record()
    baseline(store, france)
    for i in range(1, 5):
        # Re-sending the same record is harmless: its content equals the latest snapshot.
        resent = (SnapshotWrite("FR", france),) if i == 4 else ()
        store.save_check(check(T0 + timedelta(hours=i), snapshots=resent))
    counts = store.counts()
    assert (counts["checks"], counts["snapshots"], counts["contents"], counts["bodies"]) == (5, 1, 1, 1)
    assert counts["changes"] == 0


def test_changed_content_adds_a_snapshot_and_a_change_linked_to_the_previous(store: Store) -> None:
    before, after = record(level=1), record(level=3, text="Reconsider travel.")
    baseline(store, before, record("DE"))
    first = store.latest_snapshots(SOURCE)["FR"]
    check_id = changed(store, before, after, T0 + timedelta(hours=1))

    latest = store.latest_snapshots(SOURCE)
    assert latest["FR"].record == after
    assert latest["FR"].content_hash == content_hash(after)
    assert latest["DE"].record == record("DE")
    [stored] = store.changes()
    assert (stored.previous_snapshot_id, stored.snapshot_id) == (first.id, latest["FR"].id)
    assert (stored.key, stored.change_class, stored.reasons) == ("FR", "heightened", ("level raised",))
    assert (stored.level_before, stored.level_after, stored.diff) == (1, 3, "-old\n+new")
    assert store.checks(SOURCE)[0].id == check_id
    assert store.statuses()[0].last_change_at == T0 + timedelta(hours=1)


def test_a_b_a_gives_three_snapshots_and_two_contents(store: Store) -> None:
    a, b = record(level=1), record(level=2, text="Exercise increased caution.")
    baseline(store, a)
    changed(store, a, b, T0 + timedelta(hours=1), body=b"B")
    changed(store, b, a, T0 + timedelta(hours=2), body=b"<html>advice</html>")
    counts = store.counts()
    assert (counts["snapshots"], counts["contents"], counts["changes"]) == (3, 2, 2)
    assert counts["bodies"] == 2  # the A body returned: stored once
    assert store.latest_snapshots(SOURCE)["FR"].record == a


def test_a_failed_check_keeps_stored_state_and_a_success_resets_the_count(store: Store) -> None:
    good = check(T0, Outcome.NEW, snapshots=(SnapshotWrite("FR", record()),))
    store.save_check(good)
    kept = store.source_state(SOURCE)
    for i in range(1, 4):
        failed = check(
            T0 + timedelta(hours=i),
            Outcome.FAILED,
            body=b"<html>error page</html>",
            validators=Validators(etag='"error"'),
            error="HTTP 503 Service Unavailable",
        )
        store.save_check(failed)

    state = store.source_state(SOURCE)
    assert (state.validators, state.body_hash) == (kept.validators, kept.body_hash)
    assert state.consecutive_failures == 3
    [status] = store.statuses()
    assert (status.last_outcome, status.last_error) == (Outcome.FAILED, "HTTP 503 Service Unavailable")
    assert status.last_success_at == T0
    assert store.latest_snapshots(SOURCE)["FR"].record == record()
    assert store.counts()["snapshots"] == 1

    store.save_check(check(T0 + timedelta(hours=5), Outcome.NOT_MODIFIED, body=None))
    state = store.source_state(SOURCE)
    assert state.consecutive_failures == 0
    assert state.body_hash == kept.body_hash  # a 304 has no body: the stored hash stays
    assert store.statuses()[0].last_error is None


def test_a_failed_check_cannot_carry_snapshots(store: Store) -> None:
    with pytest.raises(ValueError, match="cannot carry"):
        store.save_check(check(T0, Outcome.PARSE_FAILED, snapshots=(SnapshotWrite("FR", record()),)))


def test_changes_need_a_snapshot_and_a_previous_snapshot(store: Store) -> None:
    a, b = record(level=1), record(level=2)
    with pytest.raises(ValueError, match="no snapshot in the same check"):
        store.save_check(check(T0, Outcome.CHANGED, changes=(change_of(a, b),)))
    with pytest.raises(ValueError, match="no previous snapshot"):
        changed(store, a, b, T0)
    assert store.counts() == {**dict.fromkeys(TABLES, 0), "sources": 1}  # nothing half-written
    baseline(store, a)
    with pytest.raises(ValueError, match="equals the latest"):
        changed(store, b, a, T0 + timedelta(hours=1))


def test_checks_are_listed_newest_first_with_errors_only_on_failure(store: Store) -> None:
    store.save_check(check(T0, error="ignored on success"))
    store.save_check(check(T0 + timedelta(hours=1), Outcome.BLOCKED, error="403 " + "x" * 2000))
    newest, oldest = store.checks(SOURCE)
    assert (newest.outcome, oldest.outcome) == (Outcome.BLOCKED, Outcome.UNCHANGED)
    assert oldest.error is None
    assert newest.error is not None and newest.error.startswith("403") and len(newest.error) == 500
    assert (newest.http_status, oldest.size) == (503, len(b"<html>advice</html>"))
    assert store.checks(SOURCE, limit=1) == [newest]


def test_the_raw_body_round_trips_through_zlib(store: Store) -> None:
    body = ("<html>" + "Do not travel. " * 2000 + "</html>").encode()
    store.save_check(check(T0, Outcome.NEW, body=body, snapshots=(SnapshotWrite("FR", record()),)))
    assert store.body(body_hash(body)) == body
    assert store.body(body_hash(b"never stored")) is None
    with store.engine.connect() as conn:
        size, data = conn.execute(sa.text("SELECT size, data FROM bodies")).one()
    assert size == len(body)
    assert len(data) < len(body) // 10
    assert zlib.decompress(data) == body


def test_a_body_without_a_new_snapshot_is_not_stored(store: Store) -> None:
    store.save_check(check(T0, body=b"<html>unchanged</html>"))
    assert store.counts()["bodies"] == 0
    assert store.source_state(SOURCE).body_hash == body_hash(b"<html>unchanged</html>")


def test_a_body_hash_that_does_not_match_the_body_is_rejected(store: Store) -> None:
    write = check(T0, Outcome.NEW, snapshots=(SnapshotWrite("FR", record()),))
    with pytest.raises(ValueError, match="does not match"):
        store.save_check(replace(write, body_hash=body_hash(b"other")))


# --- time ---------------------------------------------------------------------------------------


def _in_kolkata(url: str) -> str:
    """The same database, with sessions in a non-UTC time zone (PostgreSQL only)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    options = f"{parsed.query.get('options', '')} -ctimezone=Asia/Kolkata".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def test_datetimes_come_back_aware_utc_and_naive_ones_are_rejected(database_url: str) -> None:
    paris = timezone(timedelta(hours=2))
    started = datetime(2026, 6, 1, 14, 30, 5, 123456, tzinfo=paris)
    with Store.open(_in_kolkata(database_url)) as store:
        store.sync_sources([(SOURCE, "uk_fcdo", "https://example.org/")], started)
        store.save_check(check(started, Outcome.NEW, snapshots=(SnapshotWrite("FR", record()),)))
        [stored] = store.checks(SOURCE)
        snapshot = store.latest_snapshots(SOURCE)["FR"]
        status = store.statuses()[0]
        for value in (stored.started_at, snapshot.taken_at, status.last_check_at, status.last_success_at):
            assert value == started
            assert value is not None and value.tzinfo == UTC
        naive = datetime(2026, 6, 1, 12, 30)
        with pytest.raises(ValueError, match="timezone-aware"):
            store.save_check(check(naive))
        with pytest.raises(ValueError, match="timezone-aware"):
            store.sync_sources([], naive)
        with pytest.raises(ValueError, match="timezone-aware"):
            store.changes(since=naive)


def test_sqlite_stores_utc(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        store.sync_sources([(SOURCE, "uk_fcdo", "https://example.org/")], T0)
        store.save_check(check(datetime(2026, 6, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))))
        with store.engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT started_at FROM checks"))
                .scalar_one()
                .startswith("2026-06-01 12:30")
            )


# --- reading ------------------------------------------------------------------------------------


def test_statuses_report_current_levels_and_the_last_change_class(store: Store) -> None:
    store.sync_sources(
        [(SOURCE, "uk_fcdo", "https://example.org/advice"), ("quiet", "rss", "https://q.test/")], T0
    )
    baseline(store, record("FR", 1), record("ML", 4), record("page", None))
    changed(store, record("FR", 1), record("FR", 2), T0 + timedelta(hours=1))
    relaxed = record("ML", 3)
    store.save_check(
        check(
            T0 + timedelta(hours=2),
            Outcome.CHANGED,
            snapshots=(SnapshotWrite("ML", relaxed),),
            changes=(change_of(record("ML", 4), relaxed, ChangeClass.RELAXED),),
        )
    )

    quiet, uk = store.statuses()
    assert (quiet.id, quiet.levels, quiet.last_change_class, quiet.last_check_at) == ("quiet", {}, None, None)
    assert uk.levels == {"FR": 2, "ML": 3, "page": None}
    assert uk.last_change_class == "relaxed"
    assert (uk.kind, uk.url, uk.active, uk.consecutive_failures) == (
        "uk_fcdo",
        "https://example.org/advice",
        True,
        0,
    )
    assert uk.last_outcome is Outcome.CHANGED


def test_changes_filter_by_source_time_and_limit(store: Store) -> None:
    store.sync_sources(
        [(SOURCE, "uk_fcdo", "https://example.org/advice"), ("us", "us_state", "https://us.test/")], T0
    )
    baseline(store, record("FR", 1))
    for hour in range(1, 5):
        before, after = (hour - 1) % 4 + 1, hour % 4 + 1  # 1→2, 2→3, 3→4, 4→1
        changed(store, record("FR", before), record("FR", after), T0 + timedelta(hours=hour))
    us = CheckWrite("us", T0, 5, 200, 1, Outcome.NEW, snapshots=(SnapshotWrite("MX", record("MX", 1)),))
    store.save_check(us)
    mexico = record("MX", 2)
    store.save_check(
        CheckWrite(
            "us",
            T0 + timedelta(hours=3),
            5,
            200,
            1,
            Outcome.CHANGED,
            snapshots=(SnapshotWrite("MX", mexico),),
            changes=(change_of(record("MX", 1), mexico),),
        )
    )

    assert [c.level_after for c in store.changes()] == [2, 3, 4, 2, 1]
    assert [c.level_after for c in store.changes(source_id=SOURCE)] == [2, 3, 4, 1]
    assert [c.level_after for c in store.changes(source_id="us")] == [2]
    assert [c.level_after for c in store.changes(since=T0 + timedelta(hours=3))] == [4, 2, 1]
    assert [c.level_after for c in store.changes(source_id=SOURCE, limit=2)] == [4, 1]  # the newest two
    assert store.changes(since=T0 + timedelta(days=1)) == []
    assert all(c.detected_at.tzinfo == UTC for c in store.changes())


# --- opening ------------------------------------------------------------------------------------


def test_an_unopenable_database_raises_storage_error_with_the_password_masked(
    database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        url = f"sqlite:///{blocker}/monitor.db"
        with pytest.raises(StorageError, match="cannot open the database") as raised:
            Store.open(url)
        assert str(blocker) in str(raised.value)
    else:
        url = "postgresql+psycopg://monitor:s3cret-pw@127.0.0.1:1/monitor"
        with pytest.raises(StorageError, match="cannot open the database") as raised:
            Store.open(url)
        assert "s3cret-pw" not in str(raised.value)
        assert "monitor:***@127.0.0.1:1/monitor" in str(raised.value)


def test_an_invalid_or_unsupported_url_raises_storage_error() -> None:
    with pytest.raises(StorageError, match="invalid database URL") as raised:
        Store.open("not a url with pw s3cret")
    assert "s3cret" not in str(raised.value)
    with pytest.raises(StorageError, match="unsupported database"):
        Store.open("mysql://root:s3cret@localhost/monitor")


def test_sqlite_uses_wal_a_busy_timeout_and_foreign_keys(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1


def test_sqlite_creates_the_database_directory(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'data' / 'nested' / 'monitor.db'}") as store:
        assert store.counts()["sources"] == 0
    assert (tmp_path / "data" / "nested" / "monitor.db").is_file()


# --- size ---------------------------------------------------------------------------------------


def _checks_size(store: Store) -> int:
    """Bytes used by the check log: the whole SQLite file, or the PostgreSQL table with its indexes."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            database = store.engine.url.database
            assert database is not None
            return Path(database).stat().st_size
        return int(conn.execute(sa.text("SELECT pg_total_relation_size('checks')")).scalar_one())


def test_the_check_log_stays_small(store: Store) -> None:
    baseline(store, record())
    before = _checks_size(store)
    for i in range(1000):
        store.save_check(
            check(T0 + timedelta(minutes=15 * (i + 1)), validators=Validators('"v1"', "Sun, 01 Mar"))
        )
    grown = _checks_size(store) - before
    backend = store.engine.dialect.name
    print(f"\n{backend}: {grown} bytes for 1000 unchanged checks, {grown / 1000:.0f} bytes/check")
    assert store.counts()["checks"] == 1001
    assert grown < 200_000


def test_an_unchanged_check_takes_two_statements(store: Store) -> None:
    a, b = record(level=1), record(level=2)
    baseline(store, a)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.split(maxsplit=1)[0])

    sa.event.listen(store.engine, "before_cursor_execute", count)
    store.save_check(check(T0 + timedelta(hours=1)))
    assert statements == ["UPDATE", "INSERT"]
    statements.clear()
    changed(store, a, b, T0 + timedelta(hours=2))
    assert len(statements) == 7, statements  # + latest snapshots, contents, body, snapshots, changes


def test_held_changes_are_written_and_released_in_the_check_transaction(store: Store) -> None:
    store.sync_sources([(SOURCE, "uk-fcdo", "https://example.org/advice")], T0)
    hold = CheckWrite(SOURCE, T0, 5, 200, 1, Outcome.HELD, holds=(Hold("FR", "a" * 64),))
    store.save_check(hold)
    assert store.pending(SOURCE) == {"FR": "a" * 64}
    store.save_check(CheckWrite(SOURCE, T0, 5, 200, 1, Outcome.HELD, holds=(Hold("FR", "b" * 64),)))
    assert store.pending(SOURCE) == {"FR": "b" * 64}
    store.save_check(CheckWrite(SOURCE, T0, 5, 200, 1, Outcome.UNCHANGED, releases=("FR",)))
    assert store.pending(SOURCE) == {}
    with pytest.raises(ValueError, match="cannot carry snapshots, changes or holds"):
        store.save_check(CheckWrite(SOURCE, T0, 5, 500, 0, Outcome.FAILED, holds=(Hold("FR", "c" * 64),)))
