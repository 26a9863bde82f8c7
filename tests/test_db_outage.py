"""The database goes away under a running ``monitor run``, for real.

PostgreSQL: a private cluster (tests/support/pgcluster.py) is stopped for several seconds,
once with ``pg_ctl stop -m fast`` and once with ``-m immediate``, while the service checks its
sources and delivers alerts, then started again. SQLite: another process holds an exclusive
lock on the file for longer than the busy timeout.

Either way the service does not exit; it logs one warning when the outage starts and one line
when it ends (not one per failed operation); ``/healthz`` answers 503 with the reason meanwhile;
the changes found before are kept and the alerts queued are delivered after; checks resume and
the change published during the outage is recorded once; and no source is marked failed or
unhealthy because of the database (a check that cannot be recorded is not recorded at all: the
source stays due and is checked again).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.alerts.outbox import AlertStatus
from monitor.database import transaction, unavailable
from monitor.errors import StorageError
from monitor.service.outage import DatabaseOutage
from monitor.store import Store
from tests.support.httpserver import LocalServer
from tests.support.pgcluster import PgCluster, pg_cluster  # noqa: F401  (the fixture)
from tests.support.ports import free_port
from tests.support.receiver import Post, WebhookReceiver
from tests.support.services import ServiceLauncher, service_launcher

SOURCES = 12
OUTAGE = 7.0  # seconds
UNAVAILABLE = "the database is unavailable"
BACK = "the database answers again"


class SlowReceiver(WebhookReceiver):
    """Takes 50-100 ms per message: alerts are still being delivered when the database goes."""

    def __init__(self) -> None:
        super().__init__()
        self._rng = random.Random(7)

    def _accept(self, post: Post) -> int:
        status = super()._accept(post)
        time.sleep(self._rng.uniform(0.05, 0.1))
        return status


class Scene:
    """The pages, the webhook and the service of one test."""

    def __init__(self, tmp_path: Path, url: str, server: LocalServer, hook: WebhookReceiver) -> None:
        self.server, self.hook, self.url = server, hook, url
        self.http = f"127.0.0.1:{free_port()}"
        self.config = tmp_path / "monitor.yaml"
        sources = "\n".join(
            f'  - {{id: s{i:02d}, kind: html, url: "{server.url(f"/s/{i:02d}")}", '
            "options: {select: .advice}}"
            for i in range(SOURCES)
        )
        self.config.write_text(
            f'database: "{url}"\n'
            "defaults: {interval: 1s, host_spacing: 0s, per_host: 100}\n"
            "service: {lease: 2s, heartbeat: 1s, shutdown_grace: 1s}\n"
            f"sources:\n{sources}\n"
            "alerts:\n"
            f'  - {{name: hook, url: "json://127.0.0.1:{hook.port}/hook", min_class: noise}}\n',
            encoding="utf-8",
        )

    def serve(self, generation: int) -> None:
        for i in range(SOURCES):
            body = (
                f"<html><body><div class='advice'><p>Advice generation {generation} for region {i}: "
                f"follow the local authorities, issue {generation * 11 + i}.</p></div></body></html>"
            )
            self.server.route(f"/s/{i:02d}", body, etag=f'"{i}-{generation}"')

    def healthz(self) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.http}/healthz", timeout=5) as answer:
                return int(answer.status), answer.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()
        except OSError as exc:  # not listening yet
            return 0, str(exc)


def generations(url: str) -> dict[str, list[int]]:
    """Each source -> the generations of its changes, oldest first (read with a fresh engine)."""
    engine = sa.create_engine(url)
    query = sa.text(
        "SELECT ch.source_id, c.text FROM changes ch JOIN snapshots s ON s.id = ch.snapshot_id "
        "JOIN contents c ON c.hash = s.content_hash ORDER BY ch.id"
    )
    try:
        with engine.connect() as conn:
            found: dict[str, list[int]] = {}
            for source, text in conn.execute(query).tuples():
                found.setdefault(source, []).append(int(text.split("generation ", 1)[1].split(" ", 1)[0]))
            return found
    finally:
        engine.dispose()


def recorded(url: str, generation: int) -> bool:
    try:
        found = generations(url)
    except sa.exc.OperationalError:
        return False
    return len(found) == SOURCES and all(g[-1:] == [generation] for g in found.values())


def wait_for(
    condition: Callable[[], bool], what: str, launcher: ServiceLauncher, pid: int, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert launcher.alive(pid), f"the service ended while waiting for {what}: {launcher.log(pid)[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s; {launcher.log(pid)[-3000:]}"
        time.sleep(0.1)


def warnings(log: str, text: str) -> int:
    return sum(1 for line in log.splitlines() if text in line)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[ServiceLauncher]:
    with service_launcher(tmp_path) as launcher:
        yield launcher


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Callable[[str], Scene]]:
    with LocalServer() as server, SlowReceiver() as hook:
        yield lambda url: Scene(tmp_path, url, server, hook)


def start_with_changes(scene: Scene, launcher: ServiceLauncher) -> int:
    """Start the service, let it record generation 0 and then the changes to generation 1."""
    Store.open(scene.url).close()
    scene.serve(0)
    pid = launcher.start("--config", str(scene.config), "run", "--http", scene.http)
    wait_for(lambda: scene.healthz()[0] == 200, "/healthz 200", launcher, pid)
    wait_for(lambda: _snapshots(scene.url) == SOURCES, "first checks", launcher, pid)
    scene.serve(1)
    wait_for(lambda: recorded(scene.url, 1), "the changes of generation 1", launcher, pid)
    return pid


def _snapshots(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(DISTINCT source_id) FROM snapshots")).scalar_one())
    finally:
        engine.dispose()


def assert_recovered(scene: Scene, launcher: ServiceLauncher, pid: int, generation: int) -> None:
    """Every change kept once, every alert delivered, no source blamed for the database."""
    wait_for(
        lambda: recorded(scene.url, generation), f"the changes of generation {generation}", launcher, pid
    )
    with Store.open(scene.url, migrate=False) as store:
        wait_for(
            lambda: store.outbox.counts()["pending"] == 0, "every alert delivered", launcher, pid, timeout=45
        )
        alerts = store.outbox.alerts()
        statuses = store.statuses()
        timings = store.claims.timings()
        failed = [c for s in statuses for c in store.checks(s.id) if not c.outcome.ok]
    found = generations(scene.url)
    assert found == {f"s{i:02d}": list(range(1, generation + 1)) for i in range(SOURCES)}
    assert len(alerts) == SOURCES * generation and {a.status for a in alerts} == {AlertStatus.SENT}
    received = Counter(
        next(v for k, v in post.headers.items() if k.lower() == "x-alert-id") for post in scene.hook.posts
    )
    assert set(received) == {a.key for a in alerts}
    assert not failed, failed
    assert all(s.consecutive_failures == 0 for s in statuses)
    assert {t.health for t in timings.values()} == {"ok"}
    assert scene.healthz()[0] == 200


def through_an_outage(
    scene: Scene,
    launcher: ServiceLauncher,
    pid: int,
    generation: int,
    *,
    go: Callable[[], None],
    back: Callable[[], object],
) -> str:
    """Take the database away (``go``) for :data:`OUTAGE` s while generation ``generation`` is
    published, check /healthz, bring it back; returns the reason /healthz gave."""
    before = launcher.log(pid)
    go()
    gone = time.monotonic()
    scene.serve(generation)
    reasons = []
    while time.monotonic() - gone < OUTAGE:
        status, body = scene.healthz()
        if status == 503:
            reasons.append(body)
        assert launcher.alive(pid), launcher.log(pid)[-3000:]
        time.sleep(0.25)
    back()
    assert reasons, f"/healthz never said 503 during the outage; {launcher.log(pid)[-2000:]}"
    wait_for(lambda: BACK in launcher.log(pid)[len(before) :], "the end of the outage", launcher, pid)
    during = launcher.log(pid)[len(before) :]
    assert warnings(during, UNAVAILABLE) == 1, during[-3000:]
    assert warnings(during, BACK) == 1, during[-3000:]
    assert " ERROR " not in during, during[-3000:]
    assert warnings(during, " WARNING ") == 2, during[-3000:]  # the two above, nothing per source
    return reasons[-1]


def test_postgresql_stopped_and_started_again(
    pg_cluster: PgCluster,  # noqa: F811
    scene: Callable[[str], Scene],
    launcher: ServiceLauncher,
) -> None:
    setting = scene(pg_cluster.url)
    pid = start_with_changes(setting, launcher)
    reason = through_an_outage(
        setting, launcher, pid, 2, go=lambda: pg_cluster.stop("fast"), back=pg_cluster.start
    )
    assert UNAVAILABLE in reason or "does not answer" in reason, reason
    assert_recovered(setting, launcher, pid, 2)
    through_an_outage(
        setting, launcher, pid, 3, go=lambda: pg_cluster.stop("immediate"), back=pg_cluster.start
    )
    assert_recovered(setting, launcher, pid, 3)
    assert launcher.kill(pid, 15) == f"reaped {pid} 0 0"


def test_sqlite_locked_by_another_process(
    sqlite_url: str, scene: Callable[[str], Scene], launcher: ServiceLauncher
) -> None:
    setting = scene(sqlite_url)
    pid = start_with_changes(setting, launcher)
    holder = sqlite3.connect(sa.make_url(sqlite_url).database or "", isolation_level=None, timeout=10)
    try:

        def lock() -> None:
            holder.execute("BEGIN EXCLUSIVE")

        reason = through_an_outage(
            setting, launcher, pid, 2, go=lock, back=lambda: holder.execute("ROLLBACK")
        )
    finally:
        holder.close()
    assert "locked" in reason, reason
    assert_recovered(setting, launcher, pid, 2)
    assert launcher.kill(pid, 15) == f"reaped {pid} 0 0"


def test_only_a_database_that_cannot_be_used_is_an_outage(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = sa.create_engine(sqlite_url, connect_args={"timeout": 0.1})
    holder = sqlite3.connect(sa.make_url(sqlite_url).database or "", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    errors = []
    for statement in ("INSERT INTO t VALUES (1)", "SELECT * FROM no_such_table"):
        try:
            with transaction(engine, "db", "write") as conn:
                conn.exec_driver_sql(statement)
        except StorageError as exc:
            errors.append(exc)
        if holder.in_transaction:
            holder.execute("ROLLBACK")  # the lock only for the first statement
    holder.close()
    engine.dispose()
    locked_error, wrong_statement = errors
    assert unavailable(locked_error) and not unavailable(wrong_statement)

    moments = iter([10.0, 10.0, 13.5, 13.5])
    outage = DatabaseOutage(clock=lambda: next(moments))
    with caplog.at_level(logging.DEBUG, logger="monitor.service.outage"):
        for _ in range(5):
            outage.failed("heartbeat", locked_error)
        assert outage.problem() == f"the database is unavailable (for 0 s): {locked_error}"
        outage.answered()
        outage.answered()
        outage.failed("read", wrong_statement)
    levels = Counter(record.levelname for record in caplog.records)
    assert levels == {"WARNING": 2, "DEBUG": 4, "ERROR": 1}
    assert outage.problem() is None
    assert "after 3.5 s (5 operations failed meanwhile)" in caplog.text
