"""Scale-out on the local PostgreSQL: three `monitor run` processes share 200 sources.

Real processes, a real HTTP server and a real webhook receiver on 127.0.0.1. Over two
intervals the server sees each source fetched exactly once per interval, by whichever worker
took it; then one worker is killed (SIGKILL) while it holds sources in the middle of their
checks, and the others take those sources over once its leases run out. Every alert the
changes produce reaches the receiver exactly once. (Killing a worker between an alert's send
and its record is the outbox's own crash test, tests/test_alert_crash.py.)

Figures are printed with ``-s``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.httpserver import LocalServer, RecordedRequest
from tests.support.receiver import WebhookReceiver

pytestmark = pytest.mark.postgres

SOURCES = 200
INTERVAL = 15.0  # seconds
LEASE = 6.0
TEXTS = (
    "Advice version one.",
    "Advice version two. Road travel restrictions apply in the north.",
    "Advice version three. Road travel restrictions apply in the north and the east.",
)


def page(version: int) -> str:
    return f"<html><body><div class='advice'><p>{TEXTS[version]}</p></div></body></html>"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


class Database:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.engine.dispose()

    def scalar(self, sql: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())

    def rows(self, sql: str) -> list[sa.Row[tuple[object, ...]]]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).all())

    def checked_at_least(self, times: int) -> bool:
        """Every source has ``times`` checks recorded (0 before the tables exist)."""
        try:
            done = self.scalar(
                f"SELECT count(*) FROM (SELECT source_id FROM checks GROUP BY source_id "
                f"HAVING count(*) >= {times}) AS enough"
            )
        except sa.exc.ProgrammingError:
            return False
        return done == SOURCES


def write_config(path: Path, server: LocalServer, hook: WebhookReceiver) -> Path:
    lines = [
        f"defaults: {{timeout: 30s, host_spacing: 0, interval: {INTERVAL:g}s, concurrency: 64, "
        "per_host: 64}",
        f"service: {{lease: {LEASE:g}s, heartbeat: 2s, shutdown_grace: 2s}}",
        f'alerts: [{{name: hook, url: "json://127.0.0.1:{hook.port}/hook", min_class: noise}}]',
        "sources:",
    ]
    lines += [
        f"  - {{id: s{i:03d}, kind: html, url: '{server.url(f'/s{i:03d}')}', countries: [ML], "
        "options: {select: .advice}}"
        for i in range(SOURCES)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def fetched_once_per_interval(requests: list[RecordedRequest]) -> list[float]:
    """Each source was fetched exactly twice over the first two intervals; returns the gaps
    between the two requests as the server saw them."""
    fetches: dict[str, list[float]] = {}
    for request in requests:
        fetches.setdefault(request.path, []).append(request.at)
    assert sorted(fetches) == [f"/s{i:03d}" for i in range(SOURCES)]
    assert {path: len(times) for path, times in fetches.items()} == dict.fromkeys(fetches, 2)
    gaps = [times[1] - times[0] for times in fetches.values()]
    # The cadence is kept by the checks' start times (next_check_gaps); a request may leave a
    # moment after its check starts when the first, crowded cycle waits for the event loop and
    # a connection, so the server's gaps are only bounded away from two fetches in one interval.
    assert min(gaps) > INTERVAL / 2
    return gaps


def next_check_gaps(db: Database) -> list[float]:
    """Seconds between the first and second check of each source, by the check log."""
    rows = db.rows(
        "SELECT source_id, extract(epoch FROM started_at) FROM checks ORDER BY source_id, started_at"
    )
    starts: dict[str, list[float]] = {}
    for source_id, started in rows:
        starts.setdefault(str(source_id), []).append(float(str(started)))
    return [times[1] - times[0] for times in starts.values()]


def checks_per_worker(logs: list[Path]) -> list[int]:
    """The checks each worker logged (one line per check)."""
    return [len(re.findall(r"monitor\.check: s\d{3}: ", log.read_text())) for log in logs]


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_three_workers_share_200_sources_and_take_over_a_killed_ones(
    tmp_path: Path, postgres_url: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    with ExitStack() as stack:
        server = stack.enter_context(LocalServer())
        hook = stack.enter_context(WebhookReceiver())
        for i in range(SOURCES):
            server.route(f"/s{i:03d}", page(0))
        config = write_config(tmp_path / "monitor.yaml", server, hook)
        logs = [tmp_path / f"worker{n}.log" for n in range(3)]
        command = [
            sys.executable,
            "-m",
            "monitor",
            "--config",
            str(config),
            "--database",
            postgres_url,
            "run",
        ]
        for log in logs:
            with log.open("wb") as out:
                workers.append(subprocess.Popen(command, stdout=out, stderr=out, env={**os.environ}))
        db = stack.enter_context(Database(postgres_url))

        # Interval 1: first snapshots. Interval 2: every page changed, one alert per source.
        wait_for(lambda: db.checked_at_least(1), 60, "the first check of every source")
        for i in range(SOURCES):
            server.route(f"/s{i:03d}", page(1))
        wait_for(lambda: db.checked_at_least(2), 3 * INTERVAL, "the second check of every source")
        hook.wait_for(SOURCES, timeout=30)
        before_kill = server.requests

        # Interval 3: slow pages, so the checks are in flight; kill the busiest worker.
        for i in range(SOURCES):
            server.route(f"/s{i:03d}", page(2), delay=3.0)
        held: list[sa.Row[tuple[object, ...]]] = []

        def busy() -> bool:
            held[:] = db.rows(
                "SELECT lease_owner, count(*) FROM sources WHERE lease_owner IS NOT NULL "
                "GROUP BY lease_owner ORDER BY count(*) DESC"
            )
            return bool(held) and int(str(held[0][1])) >= 10

        wait_for(busy, 2 * INTERVAL, "a worker holding sources")
        victim = str(held[0][0])
        victim_pid = int(victim.rsplit(":", 2)[1])
        [proc] = [p for p in workers if p.pid == victim_pid]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = time.time()
        orphans = [str(row[0]) for row in db.rows(f"SELECT id FROM sources WHERE lease_owner = '{victim}'")]
        assert orphans

        wait_for(lambda: db.checked_at_least(3), 3 * INTERVAL, "the third check of every source")
        hook.wait_for(2 * SOURCES, timeout=60)
        taken_over = {
            str(row[0]): float(str(row[1]))
            for row in db.rows(
                "SELECT source_id, extract(epoch FROM max(started_at)) FROM checks GROUP BY source_id"
            )
            if str(row[0]) in orphans
        }
        takeover = max(taken_over.values()) - killed_at
        time.sleep(2)  # anything late would arrive now
        posts = hook.posts

        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=20) for proc in workers]
        sent = db.scalar("SELECT count(*) FROM alerts WHERE status = 'sent'")
        cadence = next_check_gaps(db)

    gaps = fetched_once_per_interval(before_kill)
    # Due an interval after its check started (plus jitter): never sooner, whichever worker.
    assert len(cadence) == SOURCES and min(cadence) >= INTERVAL

    # The three workers shared the work (their logs: one line per check).
    per_worker = checks_per_worker(logs)
    assert sum(per_worker) >= 3 * SOURCES and all(count > 0 for count in per_worker)

    # The dead worker's sources were taken over within one lease (and a moment to wake up).
    assert takeover <= LEASE + 1.0, f"taken over after {takeover:.1f} s"

    # Every alert exactly once.
    ids = Counter(post.headers.get("X-Alert-Id") for post in posts)
    assert len(posts) == 2 * SOURCES
    assert len(ids) == 2 * SOURCES and set(ids.values()) == {1}
    assert sent == 2 * SOURCES
    assert sorted(c for c in codes if c != -signal.SIGKILL) == [0, 0]
    print(
        f"\nscale-out: {SOURCES} sources, 3 workers, interval {INTERVAL:g} s, lease {LEASE:g} s; "
        f"checks per worker {per_worker}; shortest gap between two checks of a source "
        f"{min(cadence):.2f} s (between two requests {min(gaps):.2f} s); "
        f"{len(orphans)} sources held by the killed worker, all checked again "
        f"{takeover:.1f} s after the kill; {len(posts)} alerts received, {len(ids)} distinct"
    )
