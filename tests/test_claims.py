"""The shared schedule in the database: taking due sources with leases, on both backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest

from monitor.models import Outcome
from monitor.service.claims import Claims
from monitor.store import CheckWrite, Store

T0 = datetime(2025, 11, 7, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as store:
        store.sync_sources([(f"s{i}", "rss", f"https://example.org/{i}") for i in range(5)], T0)
        yield store


def all_due(claims: Claims, at: datetime) -> dict[str, datetime]:
    return dict.fromkeys(claims.timings(), at)


def test_never_checked_sources_are_due_and_taken_once(store: Store) -> None:
    claims = store.claims
    first = claims.claim("w1", all_due(claims, T0), T0, LEASE)
    second = claims.claim("w2", all_due(claims, T0), T0, LEASE)
    assert (first, second) == (["s0", "s1", "s2", "s3", "s4"], [])
    timing = claims.timings(["s0"])["s0"]
    assert (timing.lease_owner, timing.lease_until) == ("w1", T0 + LEASE)


def test_a_check_records_the_next_due_time_and_ends_its_lease(store: Store) -> None:
    claims = store.claims
    claims.claim("w1", {"s0": T0}, T0, LEASE)
    store.save_check(
        CheckWrite(
            "s0",
            T0,
            10,
            304,
            0,
            Outcome.NOT_MODIFIED,
            next_check_at=T0 + timedelta(minutes=15),
            lease_owner="w1",
        )
    )
    timing = claims.timings(["s0"])["s0"]
    assert (timing.next_check_at, timing.lease_owner, timing.lease_until) == (
        T0 + timedelta(minutes=15),
        None,
        None,
    )
    assert claims.claim("w2", {"s0": T0 + timedelta(minutes=14)}, T0 + timedelta(minutes=14), LEASE) == []
    later = T0 + timedelta(minutes=15)
    assert claims.claim("w2", {"s0": later}, later, LEASE) == ["s0"]


def test_a_check_does_not_end_another_workers_lease(store: Store) -> None:
    claims = store.claims
    claims.claim("w2", {"s1": T0}, T0, LEASE)
    store.save_check(CheckWrite("s1", T0, 10, 200, 10, Outcome.UNCHANGED, lease_owner="w1"))
    assert claims.timings(["s1"])["s1"].lease_owner == "w2"


def test_a_dead_workers_lease_runs_out_and_another_takes_the_source(store: Store) -> None:
    claims = store.claims
    assert claims.claim("dead", {"s2": T0}, T0, LEASE) == ["s2"]
    almost = T0 + LEASE - timedelta(seconds=1)
    assert claims.claim("w2", {"s2": almost}, almost, LEASE) == []
    assert claims.claim("w2", {"s2": T0 + LEASE}, T0 + LEASE, LEASE) == ["s2"]


def test_renewing_keeps_a_long_check_held(store: Store) -> None:
    claims = store.claims
    claims.claim("w1", {"s3": T0}, T0, LEASE)
    assert claims.renew("w1", ["s3"], T0 + timedelta(seconds=50), LEASE) == 1
    late = T0 + timedelta(seconds=70)
    assert claims.claim("w2", {"s3": late}, late, LEASE) == []
    assert claims.renew("w2", ["s3"], late, LEASE) == 0  # not its lease


def test_the_horizon_takes_siblings_due_a_little_later(store: Store) -> None:
    claims = store.claims
    for sid, minutes in (("s0", 15), ("s1", 15), ("s2", 20)):
        store.save_check(
            CheckWrite(
                sid,
                T0,
                1,
                304,
                0,
                Outcome.NOT_MODIFIED,
                next_check_at=T0 + timedelta(minutes=minutes, seconds=30),
            )
        )
    now = T0 + timedelta(minutes=15, seconds=40)
    horizons = {"s0": now, "s1": now + timedelta(seconds=60), "s2": now + timedelta(seconds=60)}
    assert claims.claim("w1", horizons, now, LEASE) == ["s0", "s1"]


def test_a_cycle_over_ten_thousand_sources_is_taken_in_one_claim(database_url: str) -> None:
    """`run --once` asks for every source at once; siblings ask with a second horizon."""
    ids = [f"src{i:05d}" for i in range(10_000)]
    with Store.open(database_url) as store:
        store.sync_sources([(sid, "rss", f"https://example.org/{sid}") for sid in ids], T0)
        horizons = {sid: T0 + (timedelta(minutes=1) if i % 2 else timedelta()) for i, sid in enumerate(ids)}
        assert store.claims.claim("w1", horizons, T0, LEASE) == ids
        assert store.claims.claim("w2", horizons, T0, LEASE) == []


def test_inactive_sources_are_never_taken(store: Store) -> None:
    store.sync_sources([("s0", "rss", "https://example.org/0")], T0)
    assert store.claims.claim("w1", all_due(store.claims, T0), T0, LEASE) == ["s0"]


def test_release_and_make_due(store: Store) -> None:
    claims = store.claims
    store.save_check(
        CheckWrite("s4", T0, 1, 304, 0, Outcome.NOT_MODIFIED, next_check_at=T0 + timedelta(hours=1))
    )
    claims.claim("w1", {"s1": T0}, T0, LEASE)
    assert claims.release("w1") == 1
    claims.make_due(["s4"])
    assert claims.claim("w2", {"s1": T0, "s4": T0}, T0, LEASE) == ["s1", "s4"]


def test_heartbeats_list_workers_and_their_liveness(store: Store) -> None:
    claims = store.claims
    claims.beat("host-a:10:abc123", T0, T0, "running", 2)
    claims.beat("host-b:11:def456", T0, T0 + timedelta(seconds=5), "running", 0)
    claims.beat("host-a:10:abc123", T0, T0 + timedelta(seconds=20), "stopped", 0)
    workers = {w.id: w for w in claims.workers()}
    a, b = workers["host-a:10:abc123"], workers["host-b:11:def456"]
    assert (a.host, a.pid, a.state, a.heartbeat_at) == ("host-a", 10, "stopped", T0 + timedelta(seconds=20))
    now = T0 + timedelta(seconds=30)
    assert (a.alive(now, timedelta(seconds=10)), b.alive(now, timedelta(seconds=10))) == (False, True)
    assert not b.alive(T0 + timedelta(seconds=36), timedelta(seconds=10))
    assert claims.forget_workers(T0 + timedelta(seconds=10)) == 1
    assert [w.id for w in claims.workers()] == ["host-a:10:abc123"]


@pytest.mark.postgres
def test_workers_claiming_at_once_never_share_a_source(postgres_url: str) -> None:
    with ExitStack() as stack:
        setup = stack.enter_context(Store.open(postgres_url))
        stores = [stack.enter_context(Store.open(postgres_url, migrate=False)) for _ in range(4)]
        race_for_claims(setup, stores)


def race_for_claims(setup: Store, stores: list[Store]) -> None:
    setup.sync_sources([(f"p{i:03d}", "rss", f"https://example.org/{i}") for i in range(200)], T0)
    horizons = {f"p{i:03d}": T0 for i in range(200)}
    taken: dict[str, list[str]] = {}
    start = threading.Barrier(len(stores))

    def work(name: str, store: Store) -> None:
        start.wait()
        got: list[str] = []
        for part in range(0, 200, 20):  # many small claims racing each other
            got += store.claims.claim(name, dict(list(horizons.items())[part : part + 40]), T0, LEASE)
        taken[name] = got

    threads = [threading.Thread(target=work, args=(f"w{i}", s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [sid for got in taken.values() for sid in got]
    assert sorted(every) == sorted(horizons)  # all taken, none twice
    owners = {t.lease_owner for t in setup.claims.timings().values()}
    assert owners <= set(taken)
