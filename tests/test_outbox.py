"""The durable outbox and the delivery loop on every backend: queueing in the change's transaction,
claiming with a lease, final ``sent``, retries with backoff, digests, and concurrent workers."""

from __future__ import annotations

import asyncio
import random
import runpy
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.alerts import delivery
from monitor.alerts.delivery import Deliverer, backoff
from monitor.alerts.outbox import LEASE, Alert, AlertStatus, Purpose
from monitor.alerts.render import AlertView, Message, render_alert
from monitor.alerts.routing import Planned, Router
from monitor.config import Config, loads
from monitor.database import AlertRow
from monitor.errors import StorageError
from monitor.health import Health, Verdict
from monitor.models import Change, ChangeClass, Outcome, Record, Section
from monitor.pipeline import check_sources
from monitor.store import ChangeWrite, CheckWrite, SnapshotWrite, Store
from tests.support.httpserver import LocalServer

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SOURCES = """
sources:
  - {id: uk-mali, kind: html, url: "https://example.org/mali", countries: [ML]}
  - {id: sahel, kind: html, url: "https://example.org/sahel", countries: [ML, BF]}
"""


def make_config(alerts: str, sources: str = SOURCES) -> Config:
    return loads(f"{sources}\nalerts:\n{alerts}", path=Path("t.yaml"), environ={})


def hook(name: str) -> str:
    return f"json://127.0.0.1:9/{name}"


def channels(*lines: str) -> str:
    """``name: settings`` lines -> the YAML list of channels, each with its own URL."""
    out = []
    for line in lines:
        name, _, rest = line.partition(":")
        extra = f", {rest.strip()}" if rest.strip() else ""
        out.append(f'  - {{name: {name}, url: "{hook(name)}"{extra}}}')
    return "\n".join(out)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        opened.sync_sources(
            [("uk-mali", "html", "https://example.org/mali"), ("sahel", "html", "https://example.org/sahel")],
            T0,
        )
        yield opened


# --- writing changes ----------------------------------------------------------------------------


@dataclass
class Feed:
    """Writes checks of one source: each new version of a record is a change of a chosen class."""

    store: Store
    router: Router | None
    source_id: str = "uk-mali"
    versions: dict[str, int] = field(default_factory=dict)

    def record(self, key: str) -> Record:
        version = self.versions[key]
        return Record(
            key=key,
            title=f"Advice for {key}",
            url=f"https://example.org/{self.source_id}/{key}",
            country=key if len(key) == 2 else None,
            level=1 + version % 4,
            sections=(Section("summary", f"Version {version} of the advice for {key}."),),
        )

    def baseline(self, keys: list[str], at: datetime = T0) -> None:
        for key in keys:
            self.versions[key] = 0
        snapshots = tuple(SnapshotWrite(k, self.record(k)) for k in keys)
        self.store.save_check(self.check_of(at, Outcome.NEW, snapshots, ()), self.router)

    def change(self, classes: Mapping[str, ChangeClass], at: datetime) -> dict[str, int]:
        """One check changing every key of ``classes``; returns the change ids by key."""
        befores = {k: self.record(k) for k in classes}
        for key in classes:
            self.versions[key] += 1
        snapshots = tuple(SnapshotWrite(k, self.record(k)) for k in classes)
        changes = tuple(
            ChangeWrite(
                k,
                Change(
                    k, c, (f"{c.value} for {k}",), "-before\n+after", befores[k].level, self.record(k).level
                ),
            )
            for k, c in classes.items()
        )
        self.store.save_check(self.check_of(at, Outcome.CHANGED, snapshots, changes), self.router)
        return {
            c.key: c.id for c in self.store.changes(source_id=self.source_id, since=at) if c.detected_at == at
        }

    def check_of(
        self,
        at: datetime,
        outcome: Outcome,
        snapshots: tuple[SnapshotWrite, ...],
        changes: tuple[ChangeWrite, ...],
    ) -> CheckWrite:
        return CheckWrite(
            source_id=self.source_id,
            started_at=at,
            duration_ms=10,
            http_status=200,
            size=100,
            outcome=outcome,
            snapshots=snapshots,
            changes=changes,
        )


def by_key(store: Store) -> dict[str, Alert]:
    return {a.key: a for a in store.outbox.alerts()}


def last_check_at(store: Store, source_id: str = "uk-mali") -> datetime | None:
    return next(s.last_check_at for s in store.statuses() if s.id == source_id)


def table_counts(store: Store) -> dict[str, int]:
    counts = store.counts()
    counts["alerts"] = sum(store.outbox.counts().values())
    return counts


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    channel: str
    message: Message
    alert_id: str
    change_class: ChangeClass | None


class FakeSender:
    """Records every message; ``fail(channel)`` returns an error text (or raises) to fail it."""

    def __init__(self, config: Config, fail: Callable[[str], str | None] = lambda _: None) -> None:
        self._names = {c.url: c.name for c in config.alerts}
        self._fail = fail
        self._lock = threading.Lock()
        self.sent: list[Sent] = []

    def __call__(
        self, url: str, message: Message, alert_id: str, change_class: ChangeClass | None
    ) -> str | None:
        channel = self._names.get(url, url)
        error = self._fail(channel)
        if error is None:
            with self._lock:
                self.sent.append(Sent(channel, message, alert_id, change_class))
        return error

    def to(self, channel: str) -> list[Sent]:
        return [s for s in self.sent if s.channel == channel]


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def deliverer(config: Config, store: Store, clock: Clock, send: FakeSender, seed: int = 1) -> Deliverer:
    return Deliverer(config, store, now=clock, send=send, rand=random.Random(seed).random)


# --- queued in the transaction of the change ----------------------------------------------------


def test_a_change_and_its_alerts_are_written_together(store: Store) -> None:
    config = make_config(
        channels("chat: min_class: update", "crit: min_class: critical", "ml: countries: [ML]")
    )
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "BF"])
    assert store.outbox.counts() == {"pending": 0, "sent": 0, "failed": 0}  # a first snapshot is no change

    at = T0 + timedelta(minutes=5)
    ids = feed.change({"ML": ChangeClass.SEVERE, "BF": ChangeClass.UPDATE}, at)
    assert table_counts(store)["changes"] == 2
    alerts = by_key(store)
    assert sorted(alerts) == sorted(
        [f"change-{ids['ML']}-chat", f"change-{ids['ML']}-ml", f"change-{ids['BF']}-chat"]
    )
    ml = alerts[f"change-{ids['ML']}-ml"]
    assert (ml.channel, ml.purpose, ml.status, ml.attempts) == ("ml", Purpose.CHANGE, AlertStatus.PENDING, 0)
    assert (ml.change_id, ml.change_class, ml.source_id, ml.record_key) == (
        ids["ML"],
        ChangeClass.SEVERE,
        "uk-mali",
        "ML",
    )
    assert (ml.created_at, ml.next_attempt_at, ml.batch, ml.sent_at, ml.last_error) == (
        at,
        at,
        None,
        None,
        None,
    )


def test_checks_without_changes_queue_nothing(store: Store) -> None:
    config = make_config(channels("chat: min_class: noise"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    unchanged = feed.check_of(T0 + timedelta(minutes=1), Outcome.UNCHANGED, (), ())
    store.save_check(unchanged, feed.router)
    same = feed.check_of(
        T0 + timedelta(minutes=2), Outcome.CHANGED, (SnapshotWrite("ML", feed.record("ML")),), ()
    )
    store.save_check(same, feed.router)  # the same content again: no snapshot, no change
    failed = CheckWrite("uk-mali", T0 + timedelta(minutes=3), 10, 503, 0, Outcome.FAILED, error="HTTP 503")
    store.save_check(failed, feed.router)
    counts = table_counts(store)
    assert (counts["checks"], counts["snapshots"], counts["changes"], counts["alerts"]) == (4, 1, 0, 0)


def test_a_check_rejected_inside_its_transaction_writes_neither_change_nor_alert(store: Store) -> None:
    config = make_config(channels("chat: min_class: update"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "BF"])
    before = table_counts(store)
    # BF's "change" carries the content already stored: found only after the check row is written.
    feed.versions["ML"] += 1
    bad = feed.check_of(
        T0 + timedelta(minutes=1),
        Outcome.CHANGED,
        (SnapshotWrite("ML", feed.record("ML")), SnapshotWrite("BF", feed.record("BF"))),
        (
            ChangeWrite("ML", Change("ML", ChangeClass.SEVERE, (), "", 1, 2)),
            ChangeWrite("BF", Change("BF", ChangeClass.SEVERE, (), "", 1, 1)),
        ),
    )
    with pytest.raises(ValueError, match="content equals the latest snapshot"):
        store.save_check(bad, feed.router)
    assert table_counts(store) == before
    assert last_check_at(store) == T0  # the source's own update was rolled back too


def test_when_queueing_fails_the_change_is_not_written(store: Store) -> None:
    class BrokenRouter(Router):
        def route(self, *_args: object, **_kwargs: object) -> list[Planned]:
            raise RuntimeError("routing exploded")

    config = make_config(channels("chat: min_class: update"))
    router = Router.from_config(config)
    feed = Feed(store, BrokenRouter(router.channels, router.kinds, router.countries))
    feed.baseline(["ML"])
    before = table_counts(store)
    with pytest.raises(RuntimeError, match="routing exploded"):
        feed.change({"ML": ChangeClass.CRITICAL}, T0 + timedelta(minutes=1))
    assert table_counts(store) == before
    assert last_check_at(store) == T0
    assert store.changes() == []


def test_when_an_alert_row_cannot_be_inserted_the_change_is_rolled_back(store: Store) -> None:
    config = make_config(channels("chat: min_class: update"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    first = feed.change({"ML": ChangeClass.UPDATE}, T0 + timedelta(minutes=1))["ML"]
    # Take the key the next change's alert will need (ids are assigned in sequence on both backends).
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(AlertRow).values(
                key=f"change-{first + 1}-chat",
                channel="chat",
                purpose="change",
                change_id=first,
                change_class="update",
                created_at=T0,
                next_attempt_at=T0,
            )
        )
    before = table_counts(store)
    with pytest.raises(StorageError, match="cannot save a check"):
        feed.change({"ML": ChangeClass.SEVERE}, T0 + timedelta(minutes=2))
    assert table_counts(store) == before
    assert [c.id for c in store.changes()] == [first]
    assert last_check_at(store) == T0 + timedelta(minutes=1)


def test_one_alert_per_change_and_channel(store: Store) -> None:
    config = make_config(channels("a: min_class: update", "b: min_class: update", "c: min_class: update"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "BF"])
    ids = feed.change({"ML": ChangeClass.UPDATE, "BF": ChangeClass.SEVERE}, T0 + timedelta(minutes=1))
    alerts = store.outbox.alerts()
    assert sorted((a.change_id, a.channel) for a in alerts) == sorted(
        (change_id, name) for change_id in ids.values() for name in "abc"
    )
    assert {a.key for a in alerts} == {f"change-{i}-{name}" for i in ids.values() for name in "abc"}
    duplicate = {
        "key": f"change-{ids['ML']}-a",
        "channel": "a",
        "purpose": "change",
        "change_id": ids["ML"],
        "change_class": "update",
        "created_at": T0,
        "next_attempt_at": T0,
    }
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(sa.insert(AlertRow).values(duplicate))
    assert len(store.outbox.alerts()) == 6


def test_a_change_no_channel_takes_queues_nothing(store: Store) -> None:
    config = make_config(channels("crit: min_class: critical", "bf: countries: [BF]"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    feed.change({"ML": ChangeClass.SEVERE}, T0 + timedelta(minutes=1))
    assert table_counts(store)["changes"] == 1
    assert store.outbox.alerts() == []


def test_a_record_without_country_is_routed_by_its_source_countries(store: Store) -> None:
    config = make_config(channels("burkina: min_class: update, countries: [BF]"))
    router = Router.from_config(config)
    sahel, mali = Feed(store, router, source_id="sahel"), Feed(store, router, source_id="uk-mali")
    for feed in (sahel, mali):
        feed.baseline(["page"])  # a page-wide record: no country of its own
        feed.change({"page": ChangeClass.UPDATE}, T0 + timedelta(minutes=1))
    assert [(a.source_id, a.channel) for a in store.outbox.alerts()] == [("sahel", "burkina")]


# --- claiming -----------------------------------------------------------------------------------


def test_claim_takes_only_due_pending_alerts_and_leases_them(store: Store) -> None:
    config = make_config(channels("chat: min_class: update", "digest: min_class: update, digest: hourly"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "BF", "NE", "SN"])
    ids = feed.change(
        dict.fromkeys(("ML", "BF", "NE", "SN"), ChangeClass.UPDATE), T0 + timedelta(minutes=1)
    )  # four immediate alerts to chat, four digest alerts due at 13:00
    alerts = by_key(store)
    store.outbox.mark_sent([alerts[f"change-{ids['NE']}-chat"].id], T0)
    store.outbox.mark_failed_attempt([alerts[f"change-{ids['SN']}-chat"].id], T0, "gave up", None)

    now = T0 + timedelta(minutes=2)
    claimed = store.outbox.claim(now)
    assert sorted(a.key for a in claimed) == sorted(f"change-{ids[k]}-chat" for k in ("ML", "BF"))
    assert all(a.attempts == 1 and a.next_attempt_at == now + LEASE for a in claimed)
    assert store.outbox.claim(now) == []  # held by the lease
    assert store.outbox.claim(now + LEASE - timedelta(microseconds=1)) == []
    again = store.outbox.claim(now + LEASE)  # the worker died: the lease ended
    assert sorted(a.key for a in again) == sorted(a.key for a in claimed)
    assert all(a.attempts == 2 for a in again)
    assert store.outbox.mark_sent([a.id for a in again], now + LEASE) == 2

    # The digest alerts fall due at the end of their hour; sent and failed rows never do.
    hour = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    assert store.outbox.claim(hour - timedelta(microseconds=1)) == []
    digests = store.outbox.claim(hour)
    assert sorted(a.key for a in digests) == sorted(f"change-{ids[k]}-digest" for k in ids)
    assert {a.batch for a in digests} == {"hourly:2026-03-01T13:00Z"}
    later = store.outbox.claim(hour + timedelta(days=30))  # only the digests' leases end
    assert sorted(a.key for a in later) == sorted(a.key for a in digests)
    statuses = {k: a.status for k, a in by_key(store).items()}
    assert statuses[f"change-{ids['NE']}-chat"] is AlertStatus.SENT
    assert statuses[f"change-{ids['SN']}-chat"] is AlertStatus.FAILED


def test_claim_takes_the_oldest_due_first_up_to_its_limit(store: Store) -> None:
    config = make_config(channels("chat: min_class: update"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "BF", "NE"])
    order = [
        feed.change({k: ChangeClass.UPDATE}, T0 + timedelta(minutes=i))[k] for i, k in [(3, "ML"), (1, "BF")]
    ]
    order += [feed.change({"NE": ChangeClass.UPDATE}, T0 + timedelta(minutes=5))["NE"]]
    now = T0 + timedelta(hours=1)
    first = store.outbox.claim(now, limit=2)
    assert {a.change_id for a in first} == {order[1], order[0]}  # due at 12:01 and 12:03, not 12:05
    assert [a.change_id for a in store.outbox.claim(now, limit=2)] == [order[2]]
    assert store.outbox.claim(now, limit=2) == []


def test_claim_with_a_short_lease(store: Store) -> None:
    config = make_config(channels("chat: min_class: update"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    feed.change({"ML": ChangeClass.UPDATE}, T0)
    [alert] = store.outbox.claim(T0, lease=timedelta(seconds=1))
    assert alert.next_attempt_at == T0 + timedelta(seconds=1)
    assert store.outbox.claim(T0 + timedelta(milliseconds=999), lease=timedelta(seconds=1)) == []
    assert [a.attempts for a in store.outbox.claim(T0 + timedelta(seconds=1))] == [2]


def test_claim_refuses_a_naive_time(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.outbox.claim(datetime(2026, 3, 1, 12, 0))


def test_sent_is_final(store: Store) -> None:
    config = make_config(
        channels("chat: min_class: update", "ops: min_class: critical, report_failures: true")
    )
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "BF"])
    feed.change({"ML": ChangeClass.UPDATE, "BF": ChangeClass.UPDATE}, T0)
    claimed = store.outbox.claim(T0)
    ids = [a.id for a in claimed]
    sent_at = T0 + timedelta(seconds=3)
    assert store.outbox.mark_sent(ids, sent_at) == 2
    assert store.outbox.mark_sent(ids, sent_at + timedelta(seconds=1)) == 0
    store.outbox.mark_failed_attempt(ids, sent_at, "late failure", T0 + timedelta(minutes=1))
    store.outbox.mark_failed_attempt(ids, sent_at, "late failure", None, report_to=["ops"])
    assert store.outbox.claim(T0 + timedelta(days=365)) == []
    assert store.outbox.retry_failed(T0 + timedelta(days=1)) == 0
    for alert in store.outbox.get(ids).values():
        assert (alert.status, alert.sent_at, alert.last_error, alert.attempts) == (
            AlertStatus.SENT,
            sent_at,
            None,
            1,
        )
    assert [a.purpose for a in store.outbox.alerts()] == [Purpose.CHANGE, Purpose.CHANGE]  # no reports
    assert store.outbox.counts() == {"pending": 0, "sent": 2, "failed": 0}


def test_giving_up_and_queueing_failure_reports_is_one_transaction(store: Store) -> None:
    config = make_config(
        channels("chat: min_class: update", "ops: min_class: critical, report_failures: true")
    )
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    feed.change({"ML": ChangeClass.UPDATE}, T0)
    [alert] = store.outbox.claim(T0)
    refused: list[str] = [None]  # type: ignore[list-item]  # a report row the database refuses (no channel)
    with pytest.raises(StorageError, match="cannot record a failed delivery"):
        store.outbox.mark_failed_attempt([alert.id], T0, "HTTP 503", None, report_to=refused)
    after = store.outbox.get([alert.id])[alert.id]
    assert (after.status, after.last_error) == (AlertStatus.PENDING, None)


# --- retries and giving up ----------------------------------------------------------------------

# The wait after each failed attempt: 30 s doubling, capped at one hour; jitter picks 50-100 %.
CEILINGS = [timedelta(seconds=s) for s in (30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600)]


def test_backoff_doubles_from_30_seconds_up_to_an_hour_with_jitter() -> None:
    for attempt, ceiling in enumerate(CEILINGS, start=1):
        assert backoff(attempt, 0.0) == ceiling / 2
        assert ceiling / 2 < backoff(attempt, 0.5) < ceiling
        assert backoff(attempt, 0.999999) <= ceiling
    assert backoff(1000, 0.999999) <= timedelta(hours=1)
    assert backoff(0, 0.0) == timedelta(seconds=15)


def test_a_failing_channel_is_retried_with_backoff_then_given_up_and_reported(store: Store) -> None:
    config = make_config(
        channels(
            "flaky: min_class: update, report_failures: true",
            "ops: min_class: critical, report_failures: true",
            "audit: min_class: critical",
        )
    )
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    change_id = feed.change({"ML": ChangeClass.HEIGHTENED}, T0)["ML"]
    send = FakeSender(config, lambda channel: "HTTP 503 from the hook" if channel == "flaky" else None)
    clock, rng, draws = Clock(), random.Random(20260301), []

    def rand() -> float:
        draws.append(rng.random())
        return draws[-1]

    worker = Deliverer(config, store, now=clock, send=send, rand=rand)
    [alert] = store.outbox.alerts()
    assert alert.key == f"change-{change_id}-flaky"
    for attempt in range(1, 13):
        clock.now = alert.next_attempt_at
        [result] = worker.deliver_due()
        assert (result.channel, result.alert_ids, result.error) == (
            "flaky",
            (alert.id,),
            "HTTP 503 from the hook",
        )
        alert = store.outbox.get([alert.id])[alert.id]
        assert alert.attempts == attempt
        assert alert.last_error == "HTTP 503 from the hook"
        if attempt < 12:
            assert (alert.status, result.gave_up) == (AlertStatus.PENDING, False)
            wait = alert.next_attempt_at - clock.now
            ceiling = CEILINGS[attempt - 1]
            assert ceiling / 2 <= wait <= ceiling
            assert wait == backoff(attempt, draws[-1])
            clock.now += wait - timedelta(microseconds=1)
            assert worker.deliver_due() == []  # not due a microsecond early
    assert (alert.status, result.gave_up, len(draws)) == (AlertStatus.FAILED, True, 11)
    gave_up_at = clock.now

    # The report went to ops only: not to the failed channel itself, not to a non-reporting one.
    [report] = [a for a in store.outbox.alerts() if a.purpose is Purpose.FAILURE]
    assert (report.key, report.channel, report.about_alert_id, report.change_id) == (
        f"failure-{alert.id}-ops",
        "ops",
        alert.id,
        change_id,
    )
    assert (report.status, report.next_attempt_at, report.attempts) == (AlertStatus.PENDING, gave_up_at, 0)
    assert send.sent == []
    [sent] = worker.deliver_due()
    assert sent.sent and sent.channel == "ops"
    [message] = send.to("ops")
    assert message.alert_id == report.key
    assert message.message.title.startswith("[DELIVERY FAILED] flaky:")
    assert "HTTP 503 from the hook" in message.message.text
    assert alert.key in message.message.text
    assert store.outbox.counts() == {"pending": 0, "sent": 1, "failed": 1}


def test_a_failure_report_that_fails_is_not_reported_again(store: Store) -> None:
    config = make_config(
        channels(
            "flaky: min_class: update, max_attempts: 1",
            "ops: min_class: critical, report_failures: true, max_attempts: 1",
            "pager: min_class: critical, report_failures: true, max_attempts: 1",
        )
    )
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    feed.change({"ML": ChangeClass.UPDATE}, T0)
    send = FakeSender(config, lambda channel: None if channel == "pager" else f"{channel} is down")
    worker = deliverer(config, store, Clock(), send)
    [gave_up] = worker.deliver_due()
    assert gave_up.gave_up
    results = worker.deliver_due()  # the reports: ops fails for good, pager gets its copy
    assert sorted((r.channel, r.sent) for r in results) == [("ops", False), ("pager", True)]
    assert worker.deliver_due() == []
    assert [a.channel for a in store.outbox.alerts() if a.purpose is Purpose.FAILURE] == ["pager", "ops"]
    assert store.outbox.counts() == {"pending": 0, "sent": 1, "failed": 2}


def test_retry_failed_makes_failed_alerts_pending_again(store: Store) -> None:
    config = make_config(
        channels("a: min_class: update, max_attempts: 2", "b: min_class: update, max_attempts: 1")
    )
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    feed.change({"ML": ChangeClass.UPDATE}, T0)
    clock, broken = Clock(), {"a", "b"}
    send = FakeSender(config, lambda channel: "down" if channel in broken else None)
    worker = deliverer(config, store, clock, send)
    worker.deliver_due()
    clock.now = T0 + timedelta(hours=1)
    worker.deliver_due()
    assert {a.channel: (a.status, a.attempts) for a in store.outbox.alerts()} == {
        "a": (AlertStatus.FAILED, 2),
        "b": (AlertStatus.FAILED, 1),
    }

    later = T0 + timedelta(days=2)
    assert store.outbox.retry_failed(later, channels=["nope"]) == 0
    assert store.outbox.retry_failed(later, channels=["a"]) == 1
    alerts = {a.channel: a for a in store.outbox.alerts()}
    assert (alerts["a"].status, alerts["a"].attempts, alerts["a"].next_attempt_at) == (
        AlertStatus.PENDING,
        0,
        later,
    )
    assert alerts["b"].status is AlertStatus.FAILED
    assert store.outbox.retry_failed(later) == 1  # b too
    broken.clear()
    clock.now = later
    assert sorted(r.channel for r in worker.deliver_due() if r.sent) == ["a", "b"]
    assert store.outbox.counts() == {"pending": 0, "sent": 2, "failed": 0}
    assert {a.attempts for a in store.outbox.alerts()} == {1}


# --- routing over stored history ----------------------------------------------------------------


def test_relaxed_changes_follow_the_escalation_episode(store: Store) -> None:
    config = make_config(
        channels(
            "crit: min_class: critical",
            "severe: min_class: severe",
            "high: min_class: heightened",
            "updates: min_class: update",
        )
    )
    router = Router.from_config(config)
    feed, other = Feed(store, router), Feed(store, router, source_id="sahel")
    feed.baseline(["ML", "BF"])
    other.baseline(["ML"])

    def receivers(ids: Mapping[str, int], key: str = "ML") -> list[str]:
        return sorted(a.channel for a in store.outbox.alerts() if a.change_id == ids[key])

    minute = timedelta(minutes=1)
    assert receivers(feed.change({"ML": ChangeClass.CRITICAL}, T0 + minute)) == [
        "crit",
        "high",
        "severe",
        "updates",
    ]
    # Relaxing the critical change: everyone told of the escalation hears it is over.
    assert receivers(feed.change({"ML": ChangeClass.RELAXED}, T0 + 2 * minute)) == [
        "crit",
        "high",
        "severe",
        "updates",
    ]
    # A new episode: only what was escalated since the last relaxed change counts.
    assert receivers(feed.change({"ML": ChangeClass.HEIGHTENED}, T0 + 3 * minute)) == ["high", "updates"]
    assert receivers(feed.change({"ML": ChangeClass.UPDATE}, T0 + 4 * minute)) == ["updates"]
    assert receivers(feed.change({"ML": ChangeClass.RELAXED}, T0 + 5 * minute)) == ["high", "updates"]
    # Escalations of another key or another source do not count.
    feed.change({"BF": ChangeClass.CRITICAL}, T0 + 6 * minute)
    other.change({"ML": ChangeClass.SEVERE}, T0 + 7 * minute)
    assert receivers(feed.change({"ML": ChangeClass.RELAXED}, T0 + 8 * minute)) == ["updates"]
    # Two escalations in one episode: the channels of both.
    feed.change({"ML": ChangeClass.HEIGHTENED}, T0 + 9 * minute)
    feed.change({"ML": ChangeClass.SEVERE}, T0 + 10 * minute)
    assert receivers(feed.change({"ML": ChangeClass.RELAXED}, T0 + 11 * minute)) == [
        "high",
        "severe",
        "updates",
    ]


def test_critical_then_relaxed_end_to_end(http_server: LocalServer, database_url: str) -> None:
    page = "<html><body><main><div class='advice'><p>{}</p></div></main></body></html>"
    calm = "We advise against all but essential travel to Mali."
    alarm = (
        "We advise against all travel to Mali. "
        "British nationals in Mali should leave now by commercial means."
    )
    text = f"""
sources:
  - {{id: uk-mali, kind: html, url: "{http_server.url("/mali")}", countries: [ML],
     options: {{select: .advice}}}}
alerts:
  - {{name: chat, url: "{hook("chat")}", min_class: update}}
  - {{name: crit, url: "{hook("crit")}", min_class: critical, countries: [ML]}}
  - {{name: burkina, url: "{hook("burkina")}", min_class: noise, countries: [BF]}}
"""
    config = loads(text, path=Path("t.yaml"), environ={})
    clock = Clock(T0)
    with Store.open(database_url) as store:
        store.sync_sources([(s.id, s.kind, s.url) for s in config.sources], T0)
        classes = []
        for i, advice in enumerate([calm, alarm, calm]):
            http_server.route("/mali", page.format(advice))
            clock.now = T0 + timedelta(minutes=i)
            [report] = asyncio.run(check_sources(config, store, now=clock))
            classes.append([c.change_class for c in report.changes])
        assert classes == [[], [ChangeClass.CRITICAL], [ChangeClass.RELAXED]]
        alerts = sorted((a.change_class.value, a.channel) for a in store.outbox.alerts())
        assert alerts == [
            ("critical", "chat"),
            ("critical", "crit"),
            ("relaxed", "chat"),
            ("relaxed", "crit"),
        ]

        send = FakeSender(config)
        results = deliverer(config, store, clock, send).deliver_due()
        assert sorted((r.channel, r.sent) for r in results) == [("chat", True)] * 2 + [("crit", True)] * 2
        assert {s.change_class for s in send.to("crit")} == {ChangeClass.CRITICAL, ChangeClass.RELAXED}
        assert all(s.message.text.rstrip().endswith(f"Alert id: {s.alert_id}") for s in send.sent)


# --- digests ------------------------------------------------------------------------------------


def test_a_digest_channel_gets_one_message_per_period_and_critical_at_once(store: Store) -> None:
    config = make_config(channels("digest: min_class: update, digest: hourly"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "BF", "NE", "SN"])
    minutes = timedelta(minutes=1)
    ids = feed.change({"ML": ChangeClass.UPDATE}, T0 + 5 * minutes)
    ids |= feed.change({"BF": ChangeClass.HEIGHTENED}, T0 + 20 * minutes)
    critical = feed.change({"SN": ChangeClass.CRITICAL}, T0 + 30 * minutes)["SN"]
    ids |= feed.change({"NE": ChangeClass.SEVERE}, T0 + 40 * minutes)
    clock, send = Clock(T0 + 30 * minutes), FakeSender(config)
    worker = deliverer(config, store, clock, send)

    [now] = worker.deliver_due()  # the critical change does not wait for the hour
    assert (now.message_id, now.alert_ids) == (
        f"change-{critical}-digest",
        (by_key(store)[now.message_id].id,),
    )
    assert send.sent[0].change_class is ChangeClass.CRITICAL
    clock.now = datetime(2026, 3, 1, 12, 59, 59, 999999, tzinfo=UTC)
    assert worker.deliver_due() == []

    clock.now = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    [digest] = worker.deliver_due()
    keys = sorted(f"change-{i}-digest" for i in ids.values())
    assert digest.message_id.startswith("digest-digest-") and digest.sent
    assert len(digest.alert_ids) == 3
    assert len(send.sent) == 2
    message = send.sent[1]
    assert (message.alert_id, message.change_class) == (digest.message_id, ChangeClass.SEVERE)
    assert message.message.title.startswith("[DIGEST]")
    [ids_line] = [line for line in message.message.text.splitlines() if line.startswith("Alert ids: ")]
    assert sorted(ids_line.removeprefix("Alert ids: ").split(", ")) == keys
    assert {a.status for a in store.outbox.alerts()} == {AlertStatus.SENT}
    assert worker.deliver_due() == []


def test_a_failed_digest_is_retried_as_one_message(store: Store) -> None:
    config = make_config(channels("digest: min_class: update, digest: daily, digest_at: '06:00'"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "BF"])
    feed.change({"ML": ChangeClass.UPDATE}, T0)
    feed.change({"BF": ChangeClass.UPDATE}, T0 + timedelta(hours=3))
    assert {a.batch for a in store.outbox.alerts()} == {"daily:2026-03-02T06:00Z"}
    down = [True]
    send = FakeSender(config, lambda _: "down" if down[0] else None)
    clock = Clock(datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    worker = deliverer(config, store, clock, send)
    [failed] = worker.deliver_due()
    assert (failed.error, len(failed.alert_ids)) == ("down", 2)
    retry_at = {a.next_attempt_at for a in store.outbox.alerts()}
    assert len(retry_at) == 1
    down[0] = False
    clock.now = retry_at.pop()
    [sent] = worker.deliver_due()
    assert (sent.sent, sent.message_id, sorted(sent.alert_ids)) == (
        True,
        failed.message_id,
        sorted(failed.alert_ids),
    )
    assert {(a.status, a.attempts) for a in store.outbox.alerts()} == {(AlertStatus.SENT, 2)}


# --- isolation between channels -----------------------------------------------------------------


def test_alerts_for_a_channel_no_longer_configured_fail_without_holding_up_others(store: Store) -> None:
    before = make_config(channels("old: min_class: update", "chat: min_class: update"))
    feed = Feed(store, Router.from_config(before))
    feed.baseline(["ML", "BF"])
    feed.change({"ML": ChangeClass.UPDATE, "BF": ChangeClass.SEVERE}, T0)
    after = make_config(
        channels("chat: min_class: update", "ops: min_class: critical, report_failures: true")
    )
    send = FakeSender(after)
    worker = deliverer(after, store, Clock(), send)

    results = worker.deliver_due()
    assert sorted((r.channel, r.sent, r.gave_up) for r in results) == [
        ("chat", True, False),
        ("chat", True, False),
        ("old", False, True),
        ("old", False, True),
    ]
    old = [a for a in store.outbox.alerts() if a.channel == "old"]
    assert [(a.status, a.attempts) for a in old] == [(AlertStatus.FAILED, 1)] * 2
    assert {a.last_error for a in old} == {"no alert channel named 'old' in the configuration"}
    assert {s.channel for s in send.sent} == {"chat"}
    reports = worker.deliver_due()  # ops hears of both
    assert sorted((r.channel, r.sent) for r in reports) == [("ops", True), ("ops", True)]
    assert all("no alert channel named" in s.message.text for s in send.to("ops"))


def test_a_render_failure_is_a_failed_attempt_of_that_alert_only(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(channels("chat: min_class: update", "fragile: min_class: update"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "BF"])
    feed.change({"ML": ChangeClass.UPDATE, "BF": ChangeClass.UPDATE}, T0)

    def broken_render(view: AlertView) -> Message:
        if view.alert_id.endswith("-fragile") and view.country == "ML":
            raise ValueError("template exploded")
        return render_alert(view)

    monkeypatch.setattr(delivery, "render_alert", broken_render)
    send = FakeSender(config)
    results = deliverer(config, store, Clock(), send).deliver_due()
    assert sorted((r.channel, r.error or "") for r in results) == [
        ("chat", ""),
        ("chat", ""),
        ("fragile", ""),
        ("fragile", "cannot render: template exploded"),
    ]
    [broken] = [a for a in store.outbox.alerts() if a.status is AlertStatus.PENDING]
    assert (broken.channel, broken.record_key, broken.attempts) == ("fragile", "ML", 1)
    assert broken.last_error == "cannot render: template exploded"
    assert T0 + timedelta(seconds=15) <= broken.next_attempt_at <= T0 + timedelta(seconds=30)
    assert len(send.sent) == 3
    assert "cannot render alert" in caplog.text


def _raising_setup(store: Store) -> tuple[Config, FakeSender]:
    config = make_config(channels("boom: min_class: update", "chat: min_class: update"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "BF"])
    feed.change({"ML": ChangeClass.UPDATE, "BF": ChangeClass.UPDATE}, T0)

    def fail(channel: str) -> str | None:
        if channel == "boom":
            raise ConnectionResetError("the transport blew up")
        return None

    return config, FakeSender(config, fail)


def test_a_sender_that_raises_does_not_stop_other_channels(store: Store) -> None:
    config, send = _raising_setup(store)
    results = deliverer(config, store, Clock(), send).deliver_due()
    assert len(send.to("chat")) == 2
    assert {a.status for a in store.outbox.alerts() if a.channel == "chat"} == {AlertStatus.SENT}
    boom = [r for r in results if r.channel == "boom"]
    assert len(boom) == 2
    assert all(r.error is not None and "the transport blew up" in r.error for r in boom)
    for alert in (a for a in store.outbox.alerts() if a.channel == "boom"):
        assert (alert.status, alert.attempts) == (AlertStatus.PENDING, 1)
        assert alert.last_error is not None and "the transport blew up" in alert.last_error
        assert alert.next_attempt_at <= T0 + timedelta(seconds=30)


# --- concurrent workers -------------------------------------------------------------------------


def _many_pending(store: Store, count: int) -> tuple[Config, set[int]]:
    config = make_config(channels("a: min_class: update", "b: min_class: update"))
    feed = Feed(store, Router.from_config(config))
    keys = [f"K{i:03d}" for i in range(count // 2)]
    feed.baseline(keys)
    feed.change(dict.fromkeys(keys, ChangeClass.UPDATE), T0)
    ids = {a.id for a in store.outbox.alerts()}
    assert len(ids) == count
    return config, ids


def test_concurrent_claims_never_take_the_same_alert(database_url: str, store: Store) -> None:
    _, ids = _many_pending(store, 200)
    workers = 4
    start = threading.Barrier(workers)

    def work(now: datetime, attempts: int) -> list[list[int]]:
        batches: list[list[int]] = []
        with Store.open(database_url, migrate=False) as own:  # its own engine and connections
            start.wait()
            while claimed := own.outbox.claim(now, limit=50):
                assert len(claimed) <= 50
                assert {a.attempts for a in claimed} == {attempts}
                batches.append([a.id for a in claimed])
        return batches

    # Three races over the same rows: each round starts when the previous round's leases end.
    with ThreadPoolExecutor(workers) as pool:
        for round_ in range(3):
            now = T0 + round_ * LEASE
            taken = [
                f.result(timeout=60) for f in [pool.submit(work, now, round_ + 1) for _ in range(workers)]
            ]
            everything = [i for batches in taken for batch in batches for i in batch]
            assert len(everything) == len(set(everything)), "an alert was claimed twice"
            assert set(everything) == ids
            print(f"round {round_}: claims per worker:", [[len(b) for b in batches] for batches in taken])
            assert store.outbox.claim(now) == []


def test_concurrent_deliverers_send_each_alert_once(database_url: str, store: Store) -> None:
    config, ids = _many_pending(store, 120)
    send = FakeSender(config)
    start = threading.Barrier(3)

    def work(seed: int) -> list[int]:
        delivered: list[int] = []
        with Store.open(database_url, migrate=False) as own:
            worker = deliverer(config, own, Clock(), send, seed)
            start.wait()
            while done := worker.deliver_due():
                delivered.extend(i for r in done for i in r.alert_ids if r.sent)
        return delivered

    with ThreadPoolExecutor(3) as pool:
        results = [i for f in [pool.submit(work, seed) for seed in range(3)] for i in f.result(timeout=60)]
    assert sorted(results) == sorted(ids)
    assert len({s.alert_id for s in send.sent}) == len(send.sent) == 120
    assert store.outbox.counts() == {"pending": 0, "sent": 120, "failed": 0}


def test_a_slow_batch_is_not_sent_again_by_a_second_live_worker(store: Store) -> None:
    config = make_config(channels("slow: min_class: update"))
    feed = Feed(store, Router.from_config(config))
    keys = [f"K{i}" for i in range(5)]
    feed.baseline(keys)
    feed.change(dict.fromkeys(keys, ChangeClass.UPDATE), T0)
    clock, sent = Clock(), list[str]()
    other = Deliverer(config, store, now=clock, send=lambda _u, _m, alert_id, _c: sent.append(alert_id))

    def slow(_url: str, _message: Message, alert_id: str, _class: ChangeClass | None) -> str | None:
        sent.append(alert_id)
        clock.now += timedelta(minutes=4)  # a dead endpoint: each message ends in timeouts
        if len(sent) == 3:
            other.deliver_due()  # meanwhile, another process's pass (e.g. `monitor alerts deliver`)
        return None

    Deliverer(config, store, now=clock, send=slow).deliver_due()
    assert sorted(sent) == sorted(a.key for a in store.outbox.alerts())  # each one sent once


def test_a_channel_back_after_a_long_outage_gets_what_it_gave_up_on(store: Store) -> None:
    config = make_config(
        channels(
            "chat: min_class: update, max_attempts: 2", "ops: min_class: critical, report_failures: true"
        )
    )
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML", "NE"])
    first = feed.change({"ML": ChangeClass.UPDATE}, T0)["ML"]
    clock, down = Clock(), {"chat"}
    send = FakeSender(config, lambda channel: "connection refused" if channel in down else None)
    worker = deliverer(config, store, clock, send)
    for _ in range(2):
        worker.deliver_due()
        clock.now += timedelta(hours=1)
    worker.deliver_due()  # the failure report to ops
    assert by_key(store)[f"change-{first}-chat"].status is AlertStatus.FAILED
    assert [s.channel for s in send.sent] == ["ops"]

    # Hours later the channel is back; the next alert to it goes out, and so does the old one.
    down.clear()
    clock.now += timedelta(hours=8)
    second = feed.change({"NE": ChangeClass.UPDATE}, clock.now)["NE"]
    [new] = worker.deliver_due()
    assert new.sent and new.message_id == f"change-{second}-chat"
    [old] = worker.deliver_due()
    assert old.sent and old.message_id == f"change-{first}-chat"
    assert [s.alert_id for s in send.to("chat")] == [f"change-{second}-chat", f"change-{first}-chat"]
    assert store.outbox.counts() == {"pending": 0, "sent": 3, "failed": 0}


def test_an_alert_given_up_on_twice_is_reported_once(store: Store) -> None:
    config = make_config(
        channels(
            "chat: min_class: update, max_attempts: 1", "ops: min_class: critical, report_failures: true"
        )
    )
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    feed.change({"ML": ChangeClass.UPDATE}, T0)
    clock = Clock()
    send = FakeSender(config, lambda channel: "down" if channel == "chat" else None)
    worker = deliverer(config, store, clock, send)
    worker.deliver_due()
    worker.deliver_due()
    assert store.outbox.retry_failed(clock.now) == 1
    [again] = worker.deliver_due()
    assert again.gave_up
    assert worker.deliver_due() == []
    assert len(send.to("ops")) == 1
    assert store.outbox.counts() == {"pending": 0, "sent": 1, "failed": 1}


def test_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    benchmark = runpy.run_path(str(Path(__file__).parents[1] / "benchmarks" / "alerts.py"), run_name="bench")
    benchmark["main"](["-n", "3", "--channels", "2"])
    output = capsys.readouterr().out
    assert "queue: 3 changes with 6 alerts" in output
    assert "deliver: 6 messages to 2 channel(s)" in output and "received 6" in output
    assert "bytes per alert" in output


# --- health alerts ------------------------------------------------------------------------------


def unhealthy(store: Store, router: Router, at: datetime, source_id: str = "uk-mali") -> None:
    """A blocked check: the source becomes unhealthy at once."""
    verdict = Verdict(Health.UNHEALTHY, "the publisher refused the request: HTTP 403 Forbidden")
    blocked = CheckWrite(
        source_id, at, 10, 403, 0, Outcome.BLOCKED, error="HTTP 403 Forbidden", health=verdict
    )
    store.save_check(blocked, router)


def test_health_and_change_alerts_are_listed_together_with_their_times(store: Store) -> None:
    config = make_config(channels("chat: min_class: update"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    published = T0 - timedelta(hours=3)
    feed.versions["ML"] += 1
    change = Change("ML", ChangeClass.UPDATE, ("update",), "-a\n+b", 1, 2, published)
    detected = T0 + timedelta(minutes=1)
    snapshot = (SnapshotWrite("ML", feed.record("ML")),)
    store.save_check(
        feed.check_of(detected, Outcome.CHANGED, snapshot, (ChangeWrite("ML", change),)), feed.router
    )
    unhealthy(store, feed.router, T0 + timedelta(minutes=2), "sahel")

    health, about_change = store.outbox.alerts()  # newest first
    assert (about_change.purpose, about_change.source_id, about_change.record_key) == (
        Purpose.CHANGE,
        "uk-mali",
        "ML",
    )
    assert (about_change.detected_at, about_change.published_at, about_change.health_event_id) == (
        detected,
        published,
        None,
    )
    assert (health.purpose, health.key, health.source_id, health.record_key) == (
        Purpose.HEALTH,
        f"health-{health.health_event_id}-chat",
        "sahel",
        None,
    )
    assert (health.change_id, health.change_class, health.health_state) == (None, None, "unhealthy")
    assert (health.detected_at, health.published_at, health.next_attempt_at) == (
        T0 + timedelta(minutes=2),
        None,
        T0 + timedelta(minutes=2),
    )
    assert store.outbox.get([health.id]) == {health.id: health}


def test_a_digest_channel_gets_health_alerts_at_once(store: Store) -> None:
    config = make_config(channels("daily: min_class: update, digest: daily"))
    feed = Feed(store, Router.from_config(config))
    feed.baseline(["ML"])
    feed.change({"ML": ChangeClass.UPDATE}, T0 + timedelta(minutes=1))
    unhealthy(store, feed.router, T0 + timedelta(minutes=2), "sahel")
    send, clock = FakeSender(config), Clock(T0 + timedelta(minutes=2))
    [delivery] = deliverer(config, store, clock, send).deliver_due()
    assert delivery.sent and delivery.message_id.startswith("health-")
    [message] = send.sent
    assert message.message.title == (
        "[source unhealthy] sahel: the publisher refused the request: HTTP 403 Forbidden"
    )
    assert message.change_class is None
    assert store.outbox.counts() == {"pending": 1, "sent": 1, "failed": 0}  # the change waits for 07:00


def test_a_health_alert_given_up_on_is_reported_and_the_report_renders(store: Store) -> None:
    config = make_config(
        channels("chat: max_attempts: 1", "ops: report_failures: true, health: false, min_class: critical")
    )
    router = Router.from_config(config)
    unhealthy(store, router, T0)
    send = FakeSender(config, lambda channel: "chat is down" if channel == "chat" else None)
    worker = deliverer(config, store, Clock(T0), send)
    [failed] = worker.deliver_due()
    assert (failed.channel, failed.gave_up) == ("chat", True)
    [report] = [a for a in store.outbox.alerts() if a.purpose is Purpose.FAILURE]
    [health] = [a for a in store.outbox.alerts() if a.purpose is Purpose.HEALTH]
    assert (report.channel, report.about_alert_id, report.health_event_id, report.change_class) == (
        "ops",
        health.id,
        health.health_event_id,
        None,
    )
    assert (report.source_id, report.health_state) == ("uk-mali", "unhealthy")
    [sent] = worker.deliver_due()
    assert (sent.channel, sent.sent) == ("ops", True)
    [message] = send.to("ops")
    assert message.message.title == (
        "[DELIVERY FAILED] chat: [source unhealthy] uk-mali: the publisher refused the request: "
        "HTTP 403 Forbidden"
    )
    assert "Error: chat is down" in message.message.text
    assert f"Alert id: {health.key}" in message.message.text
    assert "Last error: HTTP 403 Forbidden" in message.message.text


def test_health_alerts_render_the_checks_around_their_event(store: Store) -> None:
    config = make_config(channels("chat"))
    router = Router.from_config(config)
    ok = CheckWrite("uk-mali", T0, 10, 200, 10, Outcome.UNCHANGED, health=Verdict(Health.OK))
    store.save_check(ok, router)
    unhealthy(store, router, T0 + timedelta(minutes=30))
    back = CheckWrite(
        "uk-mali", T0 + timedelta(hours=3), 10, 200, 10, Outcome.NOT_MODIFIED, health=Verdict(Health.OK)
    )
    store.save_check(back, router)
    send, clock = FakeSender(config), Clock(T0 + timedelta(hours=3))
    deliveries = deliverer(config, store, clock, send).deliver_due()
    assert len(deliveries) == 2 and all(d.sent for d in deliveries)
    down, up = (s.message for s in send.sent)
    assert "Unhealthy since: 1 Mar 2026 12:30 UTC\nLast successful check: 1 Mar 2026 12:00 UTC\n" in down.text
    assert up.title == "[source recovered] uk-mali: works again after 2 h 30 min"
    assert "Unhealthy since: 1 Mar 2026 12:30 UTC\nWorks again since: 1 Mar 2026 15:00 UTC\n" in up.text
    assert "Last error before it worked again: HTTP 403 Forbidden" in up.text
