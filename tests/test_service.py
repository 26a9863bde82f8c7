"""`monitor run` as a service, in-process: real APScheduler timing, a real HTTP server on
127.0.0.1 and both database backends."""

from __future__ import annotations

import asyncio
import itertools
import runpy
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.config import Config, loads
from monitor.database import SourceRow
from monitor.models import Outcome
from monitor.pipeline import CheckReport
from monitor.service.runner import Service, run_once, sharing_groups
from monitor.store import Store
from tests.support.httpserver import LocalServer

PAGE = "<html><body><div class='advice'><p>We advise against all travel to Mali. {n}</p></div></body></html>"


def config_for(server: LocalServer, sources: str, service: str = "{}") -> Config:
    text = f"""
defaults: {{timeout: 2s, host_spacing: 0}}
service: {service}
sources:
{sources}
"""
    return loads(text, path=Path("test.yaml"), environ={})


def html(source_id: str, server: LocalServer, path: str, interval: str = "2s") -> str:
    url = server.url(path)
    return (
        f"  - {{id: {source_id}, kind: html, url: '{url}', interval: {interval}, "
        "options: {select: .advice}}\n"
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as store:
        yield store


def sync(store: Store, config: Config) -> None:
    store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), datetime.now(UTC))


async def serve_for(service: Service, seconds: float) -> float:
    """Run the service for ``seconds``; returns how long stopping took."""
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    stopped = time.monotonic()
    await running
    return time.monotonic() - stopped


def test_sources_reading_one_document_are_grouped(http_server: LocalServer) -> None:
    config = config_for(
        http_server,
        html("a", http_server, "/shared") + html("b", http_server, "/shared") + html("c", http_server, "/c"),
    )
    assert sharing_groups(config.sources) == {"a": ("a", "b"), "b": ("a", "b"), "c": ("c",)}


def test_each_source_is_checked_at_its_interval_and_a_shared_document_fetched_once(
    http_server: LocalServer, store: Store
) -> None:
    http_server.route("/shared", PAGE.format(n=1))
    http_server.route("/c", PAGE.format(n=2))
    reports: list[CheckReport] = []
    with LocalServer() as other_host:  # a Retry-After holds back every source of its host
        other_host.route("/slow-down", "busy", status=429, headers={"Retry-After": "120"})
        config = config_for(
            http_server,
            html("a", http_server, "/shared")
            + html("b", http_server, "/shared")
            + html("c", http_server, "/c")
            + html("d", other_host, "/slow-down"),
        )
        sync(store, config)

        async def main() -> None:
            service = Service(config, store, on_report=reports.append)
            await serve_for(service, 5.2)

        asyncio.run(main())
        assert other_host.hits("/slow-down") == 1
    checks = {sid: len(store.checks(sid)) for sid in "abcd"}
    # Due at 0, 2 and 4 s, each plus up to 0.2 s of jitter (a busy machine may fit one more
    # before the service stops), and never sooner than the interval after the previous one.
    assert checks["a"] == checks["b"] == http_server.hits("/shared")  # one request for both
    assert checks["c"] == http_server.hits("/c")
    for sid in "ac":
        starts = sorted(check.started_at for check in store.checks(sid))
        assert len(starts) in (3, 4)
        assert min(b - a for a, b in itertools.pairwise(starts)) >= timedelta(seconds=2)
    [asked] = [r for r in reports if r.source_id == "d"]
    assert (asked.outcome, checks["d"]) == (Outcome.FAILED, 1)
    assert asked.next_check_at is not None
    assert asked.next_check_at - asked.started_at >= timedelta(seconds=119)
    timings = store.claims.timings()
    assert {t.lease_owner for t in timings.values()} == {None}


def test_stopping_abandons_a_slow_check_cleanly_within_the_grace(
    http_server: LocalServer, store: Store
) -> None:
    http_server.route("/fast", PAGE.format(n=1))
    http_server.route("/slow", PAGE.format(n=2), delay=30)
    config = config_for(
        http_server,
        html("fast", http_server, "/fast", "1h") + html("slow", http_server, "/slow", "1h"),
        service="{shutdown_grace: 1s}",
    )
    config = config.model_copy(
        update={"defaults": config.defaults.model_copy(update={"timeout": timedelta(seconds=60)})}
    )
    sync(store, config)

    async def main() -> float:
        return await serve_for(Service(config, store, rand=lambda: 0.0), 1.5)

    took = asyncio.run(main())
    assert took < 3
    assert len(store.checks("fast")) == 1
    assert store.checks("slow") == []  # abandoned: nothing half-written
    slow = store.claims.timings(["slow"])["slow"]
    assert (slow.lease_owner, slow.next_check_at) == (None, None)  # free and still due for the next worker
    workers = store.claims.workers()
    assert [w.state for w in workers] == ["stopped"]


def test_reload_adds_removes_and_changes_sources_without_a_restart(
    http_server: LocalServer, store: Store
) -> None:
    for path in ("/one", "/two", "/three"):
        http_server.route(path, PAGE.format(n=path))
    before = config_for(
        http_server, html("one", http_server, "/one", "1h") + html("two", http_server, "/two", "1h")
    )
    after = config_for(
        http_server,
        html("one", http_server, "/one", "1h")  # unchanged: not checked again
        + html("two", http_server, "/three", "1h")  # changed URL: checked again at once
        + html("new", http_server, "/three", "1h"),
    )
    sync(store, before)

    async def main() -> None:
        service = Service(before, store, rand=lambda: 0.0)  # no jitter: checks start at once
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        await asyncio.sleep(1.0)
        service.reload(after)
        await asyncio.sleep(1.5)
        stop.set()
        await running

    asyncio.run(main())
    assert http_server.hits("/one") == 1
    assert http_server.hits("/two") == 1
    assert len(store.checks("two")) == 2
    assert len(store.checks("new")) == 1
    assert http_server.hits("/three") == 1  # "two" and "new" read it together, once


def test_run_once_checks_what_is_due_and_leaves_the_rest(http_server: LocalServer, store: Store) -> None:
    http_server.route("/a", PAGE.format(n=1))
    http_server.route("/down", "no", status=500)
    config = config_for(
        http_server, html("a", http_server, "/a", "15m") + html("down", http_server, "/down", "15m")
    )
    sync(store, config)
    reports, skipped = asyncio.run(run_once(config, store))
    assert ({r.source_id: r.outcome for r in reports}, skipped) == (
        {"a": Outcome.NEW, "down": Outcome.FAILED},
        [],
    )
    reports, skipped = asyncio.run(run_once(config, store))
    assert (reports, skipped) == ([], ["a", "down"])
    start = datetime.now(UTC)
    checked = []
    for minutes in (15, 30, 45, 60, 75, 90, 105):
        reports, _ = asyncio.run(run_once(config, store, now=lambda m=minutes: start + timedelta(minutes=m)))
        checked.append(sorted(r.source_id for r in reports))
    # "down" failed once at 0, then waits 15, 30 and 60 minutes; "a" keeps its 15.
    assert checked == [["a", "down"], ["a"], ["a", "down"], ["a"], ["a"], ["a"], ["a", "down"]]


def test_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    benchmark = runpy.run_path(str(Path(__file__).parents[1] / "benchmarks" / "service.py"), run_name="bench")
    benchmark["main"](["-n", "4", "--interval", "1"])
    output = capsys.readouterr().out
    assert "cycle 1: 4 checks in" in output
    assert "changes recorded: 8" in output
    assert "one claim of a due source:" in output and "peak memory (RSS):" in output


def test_a_source_woken_before_it_is_due_does_not_take_its_siblings_early(
    http_server: LocalServer, store: Store
) -> None:
    """A job can wake early (a schedule read before the last check was recorded, a reload):
    then nothing is checked, not even a sibling that falls due within the sharing window."""
    http_server.route("/shared", PAGE.format(n=1))
    config = config_for(
        http_server,
        html("a", http_server, "/shared", "10m") + html("b", http_server, "/shared", "10m"),
    )
    sync(store, config)
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        for sid, due in (("a", now + timedelta(minutes=5)), ("b", now + timedelta(seconds=20))):
            conn.execute(SourceRow.__table__.update().where(SourceRow.id == sid).values(next_check_at=due))

    async def fire(source_id: str) -> None:
        service = Service(config, store)
        try:
            await service._fire(source_id)
        finally:
            await service.close()

    asyncio.run(fire("a"))
    assert (http_server.hits("/shared"), len(store.checks("b"))) == (0, 0)
    with store.engine.begin() as conn:
        conn.execute(SourceRow.__table__.update().where(SourceRow.id == "a").values(next_check_at=now))
    asyncio.run(fire("a"))  # due now: its sibling due within the window comes along, one request
    assert (http_server.hits("/shared"), len(store.checks("a")), len(store.checks("b"))) == (1, 1, 1)


def test_jobs_woken_together_are_taken_in_one_round(http_server: LocalServer, store: Store) -> None:
    """Sources falling due at about the same time share one claim, one batch, one schedule read."""
    for i in range(20):
        http_server.route(f"/p{i}", PAGE.format(n=i))
    config = config_for(http_server, "".join(html(f"s{i}", http_server, f"/p{i}", "1h") for i in range(20)))
    sync(store, config)
    claims: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE sources SET lease_owner") and "IN (SELECT" in statement:
            claims.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)

    async def main() -> None:
        # The first checks are spread over up to 5 s (a tenth of the hour's interval at most);
        # with rand() = 0 every job wakes at once.
        await serve_for(Service(config, store, rand=lambda: 0.0), 1.5)

    asyncio.run(main())
    assert sum(len(store.checks(f"s{i}")) for i in range(20)) == 20
    assert len(claims) == 1
