"""Group commit of checks: Store.save_checks and the CheckWriter, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitor.checkwriter import CheckWriter
from monitor.health import Health, Verdict
from monitor.models import Outcome, Validators
from monitor.store import CheckWrite, Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SOURCES = [f"src-{i:02d}" for i in range(40)]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        opened.sync_sources([(s, "html", f"https://example.org/{s}") for s in SOURCES], T0)
        yield opened


def unchanged(source_id: str, at: datetime, etag: str = '"v1"', **kwargs: object) -> CheckWrite:
    return CheckWrite(
        source_id=source_id,
        started_at=at,
        duration_ms=3,
        http_status=304,
        size=0,
        outcome=Outcome.NOT_MODIFIED,
        validators=Validators(etag=etag),
        **kwargs,  # type: ignore[arg-type]
    )


def failed(source_id: str, at: datetime, **kwargs: object) -> CheckWrite:
    return CheckWrite(
        source_id,
        at,
        3,
        503,
        0,
        Outcome.FAILED,
        error="HTTP 503 Service Unavailable",
        **kwargs,  # type: ignore[arg-type]
    )


def commits(store: Store) -> list[int]:
    counted = [0]

    def count(_conn: object) -> None:
        counted[0] += 1

    sa.event.listen(store.engine, "commit", count)
    return counted


def test_save_checks_writes_each_check_as_save_check_would(store: Store) -> None:
    due = T0 + timedelta(hours=1)
    writes = [unchanged(s, T0, etag=f'"{s}"', next_check_at=due) for s in SOURCES[:20]]
    writes += [failed(s, T0) for s in SOURCES[20:]]
    ids = store.save_checks(writes)
    assert len(ids) == len(set(ids)) == 40
    assert [c.id for c in (store.checks(s, 1)[0] for s in SOURCES)] == ids
    states = store.source_states(SOURCES)
    assert states["src-03"].validators == Validators(etag='"src-03"')
    assert states["src-03"].consecutive_failures == 0
    assert states["src-30"].consecutive_failures == 1
    assert states["src-30"].validators == Validators()
    store.save_checks([failed(s, T0 + timedelta(minutes=1)) for s in SOURCES[20:]])
    assert store.source_state("src-30").consecutive_failures == 2


def test_checks_of_one_source_in_one_group_are_written_in_order(store: Store) -> None:
    writes = [
        unchanged("src-00", T0, etag='"a"'),
        failed("src-00", T0 + timedelta(minutes=1)),
        unchanged("src-00", T0 + timedelta(minutes=2), etag='"c"'),
        failed("src-00", T0 + timedelta(minutes=3)),
    ]
    store.save_checks(writes)
    state = store.source_state("src-00")
    assert state.validators == Validators(etag='"c"')
    assert state.consecutive_failures == 1
    assert [c.outcome for c in store.checks("src-00")] == [
        Outcome.FAILED,
        Outcome.NOT_MODIFIED,
        Outcome.FAILED,
        Outcome.NOT_MODIFIED,
    ]


def test_one_unknown_source_and_nothing_of_the_group_is_written(store: Store) -> None:
    before = store.counts()["checks"]
    with pytest.raises(KeyError, match="nowhere"):
        store.save_checks([unchanged("src-00", T0), unchanged("nowhere", T0), unchanged("src-01", T0)])
    assert store.counts()["checks"] == before


def test_a_verdict_that_changes_nothing_writes_nothing_and_a_new_one_is_recorded(store: Store) -> None:
    ok, down = Verdict(Health.OK), Verdict(Health.UNHEALTHY, "HTTP 503 three times")
    store.save_checks([unchanged(s, T0, health=ok) for s in SOURCES[:10]])
    assert store.counts()["health_events"] == 0
    store.save_checks([failed("src-00", T0, health=down), unchanged("src-01", T0, health=ok)])
    store.save_checks([failed("src-00", T0 + timedelta(minutes=1), health=down)])  # already unhealthy
    assert store.counts()["health_events"] == 1
    store.save_checks([unchanged("src-00", T0 + timedelta(minutes=2), health=ok)])
    assert store.counts()["health_events"] == 2  # recovered
    with store.engine.begin() as conn:
        query = sa.text("SELECT health FROM sources WHERE id = 'src-00'")
        assert conn.execute(query).scalar_one() == "ok"


def test_concurrent_checks_share_transactions_and_each_gets_its_own_id(store: Store) -> None:
    counted = commits(store)

    async def go() -> list[int]:
        writer = CheckWriter(store, window=0.05)
        return list(await asyncio.gather(*(writer.save(unchanged(s, T0)) for s in SOURCES)))

    ids = asyncio.run(go())
    assert counted[0] == 1
    assert [store.checks(s, 1)[0].id for s in SOURCES] == ids


def test_a_full_group_is_written_at_once(store: Store) -> None:
    counted = commits(store)

    async def go() -> list[int]:
        writer = CheckWriter(store, window=60, largest=10)  # never waits for the window
        return list(
            await asyncio.wait_for(asyncio.gather(*(writer.save(unchanged(s, T0)) for s in SOURCES)), 10)
        )

    assert len(asyncio.run(go())) == 40
    assert counted[0] == 4


def test_a_bad_check_fails_alone(store: Store) -> None:
    async def go() -> list[int | BaseException]:
        writer = CheckWriter(store)
        saves = [writer.save(unchanged(s, T0)) for s in ["src-00", "nowhere", "src-01"]]
        return list(await asyncio.gather(*saves, return_exceptions=True))

    first, bad, last = asyncio.run(go())
    assert isinstance(bad, KeyError)
    assert isinstance(first, int) and isinstance(last, int)
    assert store.counts()["checks"] == 2


def test_flush_writes_what_waits_now(store: Store) -> None:
    async def go() -> int:
        writer = CheckWriter(store, window=60)
        waiting = asyncio.create_task(writer.save(unchanged("src-00", T0)))
        await asyncio.sleep(0.01)
        assert store.counts()["checks"] == 0
        writer.flush()
        return await asyncio.wait_for(waiting, 1)

    assert asyncio.run(go()) == store.checks("src-00", 1)[0].id


def test_window_and_largest_must_make_sense(store: Store) -> None:
    with pytest.raises(ValueError, match="window"):
        CheckWriter(store, window=-1)
    with pytest.raises(ValueError, match="largest"):
        CheckWriter(store, largest=0)
