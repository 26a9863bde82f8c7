"""The service's Prometheus metrics, scraped over a real socket from the HTTP endpoint: counters fed
with real check reports and deliveries, and gauges read from a real SQLite database at scrape time."""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.alerts.delivery import Deliverer, Delivery
from monitor.alerts.outbox import Alert, AlertStatus, Purpose
from monitor.alerts.render import Message
from monitor.alerts.routing import Router
from monitor.config import loads
from monitor.models import Change, ChangeClass, Outcome, Record, Section
from monitor.pipeline import CheckReport
from monitor.service.endpoint import Endpoint
from monitor.service.metrics import Metrics
from monitor.store import ChangeWrite, CheckWrite, SnapshotWrite, Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Labels = tuple[tuple[str, str], ...]
Scrape = Callable[[], dict[tuple[str, Labels], float]]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def scrape(metrics: Metrics) -> Iterator[Scrape]:
    """GET /metrics from a real endpoint; returns every sample by (name, sorted labels)."""
    endpoint = Endpoint("127.0.0.1:0", metrics.registry, lambda: None)
    endpoint.start()

    def get() -> dict[tuple[str, Labels], float]:
        response = httpx.get(f"{endpoint.url}/metrics", timeout=5)
        assert response.status_code == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }

    yield get
    endpoint.stop()


def at(samples: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def names(samples: dict[tuple[str, Labels], float]) -> set[str]:
    return {name for name, _ in samples}


def change(change_class: ChangeClass, published_at: datetime | None = None) -> Change:
    return Change("ML", change_class, ("reason",), "-a\n+b", 2, 3, published_at)


def report(source: str, outcome: Outcome, **fields: object) -> CheckReport:
    defaults: dict[str, object] = {"started_at": T0, "duration_ms": 100}
    return CheckReport(source, outcome, **{**defaults, **fields})  # type: ignore[arg-type]


def alert(id_: int, created_at: datetime, channel: str = "ops", purpose: Purpose = Purpose.CHANGE) -> Alert:
    change = purpose is Purpose.CHANGE
    return Alert(
        id=id_,
        key=f"{purpose.value}-{id_}-{channel}",
        channel=channel,
        purpose=purpose,
        status=AlertStatus.PENDING,
        attempts=1,
        change_id=id_ if change else None,
        change_class=ChangeClass.SEVERE if change else None,
        health_event_id=None if change else id_,
        health_state=None if change else "unhealthy",
        source_id="s1",
        record_key="ML" if change else None,
        detected_at=created_at,
        published_at=None,
        about_alert_id=None,
        batch=None,
        created_at=created_at,
        next_attempt_at=created_at,
        sent_at=None,
        last_error=None,
    )


# --- per-process counters -----------------------------------------------------------------------


def test_checks_are_counted_by_source_and_outcome_with_bytes_and_durations(
    metrics: Metrics, scrape: Scrape
) -> None:
    metrics.observe_check(report("s1", Outcome.UNCHANGED, http_status=200, bytes=1000, duration_ms=120))
    metrics.observe_check(report("s1", Outcome.UNCHANGED, http_status=200, bytes=500, duration_ms=30))
    metrics.observe_check(report("s1", Outcome.NOT_MODIFIED, http_status=304, duration_ms=40))
    metrics.observe_check(report("s2", Outcome.FAILED, http_status=503, error="HTTP 503", duration_ms=90_000))

    got = scrape()
    assert at(got, "monitor_checks_total", source="s1", outcome="unchanged") == 2
    assert at(got, "monitor_checks_total", source="s1", outcome="not_modified") == 1
    assert at(got, "monitor_checks_total", source="s2", outcome="failed") == 1
    assert at(got, "monitor_fetched_bytes_total", source="s1") == 1500
    assert at(got, "monitor_fetched_bytes_total", source="s2") == 0
    assert at(got, "monitor_check_duration_seconds_count", source="s1") == 3
    assert at(got, "monitor_check_duration_seconds_sum", source="s1") == pytest.approx(0.19)
    assert at(got, "monitor_check_duration_seconds_bucket", source="s1", le="0.05") == 2
    assert at(got, "monitor_check_duration_seconds_bucket", source="s2", le="60.0") == 0
    assert at(got, "monitor_check_duration_seconds_bucket", source="s2", le="120.0") == 1


def test_the_not_modified_ratio_counts_only_checks_that_got_an_http_answer(
    metrics: Metrics, scrape: Scrape
) -> None:
    assert math.isnan(at(scrape(), "monitor_not_modified_ratio"))  # no answer yet: no ratio
    for outcome in (Outcome.NOT_MODIFIED, Outcome.UNCHANGED, Outcome.CHANGED, Outcome.NOT_MODIFIED):
        metrics.observe_check(report("s1", outcome))
    for outcome in (Outcome.FAILED, Outcome.BLOCKED, Outcome.PARSE_FAILED):
        metrics.observe_check(report("s1", outcome))
    assert at(scrape(), "monitor_not_modified_ratio") == 0.5


def test_changes_are_counted_by_class_and_their_publication_lag_observed(
    metrics: Metrics, scrape: Scrape
) -> None:
    assert at(scrape(), "monitor_changes_total", **{"class": "critical"}) == 0  # shown before any change
    changes = (
        change(ChangeClass.SEVERE, T0 - timedelta(hours=2)),
        change(ChangeClass.UPDATE, T0 + timedelta(hours=5)),  # dated after our check: counted as 0
        change(ChangeClass.UPDATE),  # the publisher gave no time
    )
    metrics.observe_check(report("s1", Outcome.CHANGED, changes=changes))

    got = scrape()
    assert at(got, "monitor_changes_total", **{"class": "severe"}) == 1
    assert at(got, "monitor_changes_total", **{"class": "update"}) == 2
    assert at(got, "monitor_changes_total", **{"class": "critical"}) == 0
    assert at(got, "monitor_publication_to_detection_seconds_count") == 2
    assert at(got, "monitor_publication_to_detection_seconds_sum") == 7200
    assert at(got, "monitor_publication_to_detection_seconds_bucket", le="60.0") == 1
    assert at(got, "monitor_publication_to_detection_seconds_bucket", le="3600.0") == 1
    assert at(got, "monitor_publication_to_detection_seconds_bucket", le="10800.0") == 2


def test_alerts_are_counted_per_alert_by_outcome_and_sent_ones_timed_since_detection(
    metrics: Metrics, scrape: Scrape
) -> None:
    now = T0 + timedelta(hours=1)
    digest = [alert(1, now - timedelta(seconds=30)), alert(2, now - timedelta(seconds=90)), alert(3, T0)]
    metrics.observe_delivery(Delivery("ops", (1, 2, 3), "digest-ops-1", "t", None), digest, now)
    metrics.observe_delivery(Delivery("ops", (4,), "change-4-ops", "t", "HTTP 500"), [alert(4, T0)], now)
    gave_up = [alert(5, T0, "chat"), alert(6, T0, "chat")]
    metrics.observe_delivery(
        Delivery("chat", (5, 6), "digest-chat", "t", "refused", gave_up=True), gave_up, now
    )
    health = [alert(7, T0, purpose=Purpose.HEALTH)]
    metrics.observe_delivery(Delivery("ops", (7,), "health-7-ops", "t", None), health, now)

    got = scrape()
    assert at(got, "monitor_alerts_total", channel="ops", outcome="sent") == 4
    assert at(got, "monitor_alerts_total", channel="ops", outcome="retry") == 1
    assert at(got, "monitor_alerts_total", channel="chat", outcome="failed") == 2
    assert ("monitor_alerts_total", (("channel", "chat"), ("outcome", "sent"))) not in got
    # Only the three sent alerts about changes are timed: 30 s, 90 s and an hour after detection.
    assert at(got, "monitor_detection_to_delivery_seconds_count") == 3
    assert at(got, "monitor_detection_to_delivery_seconds_sum") == 30 + 90 + 3600
    assert at(got, "monitor_detection_to_delivery_seconds_bucket", le="60.0") == 1
    assert at(got, "monitor_detection_to_delivery_seconds_bucket", le="300.0") == 2


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_check(report("s1", Outcome.UNCHANGED))
    assert (
        first.registry.get_sample_value("monitor_checks_total", {"source": "s1", "outcome": "unchanged"}) == 1
    )
    assert (
        second.registry.get_sample_value("monitor_checks_total", {"source": "s1", "outcome": "unchanged"})
        is None
    )


# --- read from the database at scrape time ------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open("sqlite:///" + str(tmp_path / "db" / "m.db")) as opened:
        opened.sync_sources(
            [
                ("s1", "rss", "https://example.org/feed"),
                ("s2", "rss", "https://example.org/other"),
                ("s3", "rss", "https://example.org/third"),
            ],
            T0,
        )
        yield opened


def checked(store: Store, source: str, when: datetime, outcome: Outcome) -> None:
    status = 503 if outcome is Outcome.FAILED else 200
    error = "HTTP 503" if outcome is Outcome.FAILED else None
    store.save_check(CheckWrite(source, when, 10, status, 0, outcome, error=error))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_the_database_gauges_are_read_at_every_scrape(metrics: Metrics, scrape: Scrape, store: Store) -> None:
    clock = Clock(T0 + timedelta(minutes=10))
    intervals = {"s1": timedelta(minutes=15), "s2": timedelta(hours=1)}
    metrics.watch(store, intervals, clock, lambda: True)
    checked(store, "s1", T0, Outcome.UNCHANGED)
    checked(store, "s2", T0, Outcome.FAILED)
    checked(store, "s2", T0 + timedelta(minutes=1), Outcome.FAILED)
    checked(store, "s3", T0 + timedelta(minutes=2), Outcome.NEW)
    checked(store, "s3", T0 + timedelta(minutes=3), Outcome.FAILED)

    got = scrape()
    assert at(got, "monitor_database_up") == 1
    assert at(got, "monitor_scheduler_running") == 1
    assert {status: at(got, "monitor_outbox_alerts", status=status) for status in AlertStatus} == {
        AlertStatus.PENDING: 0,
        AlertStatus.SENT: 0,
        AlertStatus.FAILED: 0,
    }
    assert at(got, "monitor_source_staleness_seconds", source="s1") == 600
    assert at(got, "monitor_source_staleness_seconds", source="s3") == 480  # its last success
    assert ("monitor_source_staleness_seconds", (("source", "s2"),)) not in got  # never successful
    assert [at(got, "monitor_source_failures", source=s) for s in ("s1", "s2", "s3")] == [0, 2, 1]
    assert at(got, "monitor_source_interval_seconds", source="s1") == 900
    assert at(got, "monitor_source_interval_seconds", source="s2") == 3600

    clock.now += timedelta(minutes=5)
    checked(store, "s2", clock.now, Outcome.UNCHANGED)
    got = scrape()
    assert at(got, "monitor_source_staleness_seconds", source="s1") == 900
    assert at(got, "monitor_source_staleness_seconds", source="s2") == 0
    assert at(got, "monitor_source_failures", source="s2") == 0


def test_an_unreadable_database_shows_as_down_and_the_scrape_still_answers(
    metrics: Metrics, scrape: Scrape, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = [True]
    metrics.watch(store, {}, lambda: T0, lambda: running[0])
    checked(store, "s1", T0, Outcome.UNCHANGED)
    metrics.observe_check(report("s1", Outcome.UNCHANGED))
    assert at(scrape(), "monitor_database_up") == 1

    shutil.rmtree(tmp_path / "db")
    store.close()  # pooled connections would keep the deleted file open; new ones cannot open it
    running[0] = False
    with caplog.at_level(logging.DEBUG, logger="monitor.service.metrics"):
        got = scrape()
        scrape()
    assert at(got, "monitor_database_up") == 0
    assert at(got, "monitor_scheduler_running") == 0
    assert at(got, "monitor_checks_total", source="s1", outcome="unchanged") == 1  # the process's own
    assert not names(got) & {
        "monitor_outbox_alerts",
        "monitor_source_staleness_seconds",
        "monitor_source_failures",
    }
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per outage, not at every scrape
    assert "cannot read the database" in warnings[0].getMessage()


def test_a_failing_scheduler_probe_reads_as_not_running(
    metrics: Metrics, scrape: Scrape, store: Store
) -> None:
    def broken() -> bool:
        raise RuntimeError("scheduler gone")

    metrics.watch(store, {}, lambda: T0, broken)
    got = scrape()
    assert at(got, "monitor_scheduler_running") == 0
    assert at(got, "monitor_database_up") == 1


def test_watching_twice_is_refused(metrics: Metrics, store: Store) -> None:
    metrics.watch(store, {}, lambda: T0, lambda: True)
    with pytest.raises(ValueError, match="monitor_database_up"):
        metrics.watch(store, {}, lambda: T0, lambda: True)


# --- the delivery hook --------------------------------------------------------------------------

CONFIG = """
sources:
  - {id: s1, kind: html, url: "https://example.org/mali", countries: [ML]}
alerts:
  - {name: ops, url: "json://127.0.0.1:9/ops", min_class: update, max_attempts: 2}
"""


def queue_change(store: Store, router: Router, detected_at: datetime) -> None:
    def record(version: int) -> Record:
        text = f"Version {version} of the advice."
        return Record("ML", "Mali", "https://example.org/mali", "ML", version, sections=(Section("s", text),))

    baseline = CheckWrite("s1", T0, 10, 200, 0, Outcome.NEW, snapshots=(SnapshotWrite("ML", record(1)),))
    store.save_check(baseline, router)
    changed = CheckWrite(
        "s1",
        detected_at,
        10,
        200,
        0,
        Outcome.CHANGED,
        snapshots=(SnapshotWrite("ML", record(2)),),
        changes=(ChangeWrite("ML", Change("ML", ChangeClass.SEVERE, ("worse",), "-1\n+2", 1, 2)),),
    )
    store.save_check(changed, router)


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[Store]:
    with Store.open("sqlite:///" + str(tmp_path / "hook.db")) as opened:
        opened.sync_sources([("s1", "html", "https://example.org/mali")], T0)
        yield opened


def test_the_deliverer_reports_each_outcome_to_the_metrics(
    metrics: Metrics, scrape: Scrape, hooked: Store
) -> None:
    config = loads(CONFIG, path=Path("t.yaml"), environ={})
    queue_change(hooked, Router.from_config(config), T0 + timedelta(minutes=1))
    clock = Clock(T0 + timedelta(minutes=1, seconds=5))
    metrics.watch(hooked, {}, clock, lambda: True)
    answers: list[str | None] = ["HTTP 500", None]

    def send(_url: str, _message: Message, _alert_id: str, _class: ChangeClass | None) -> str | None:
        return answers.pop(0)

    deliverer = Deliverer(
        config,
        hooked,
        now=clock,
        send=send,
        rand=lambda: 0.0,
        observe=lambda d, alerts: metrics.observe_delivery(d, alerts, clock()),
    )
    assert at(scrape(), "monitor_outbox_alerts", status="pending") == 1
    [first] = deliverer.deliver_due()
    clock.now += timedelta(minutes=1)
    [second] = deliverer.deliver_due()

    assert (first.sent, second.sent) == (False, True)
    got = scrape()
    assert at(got, "monitor_alerts_total", channel="ops", outcome="retry") == 1
    assert at(got, "monitor_alerts_total", channel="ops", outcome="sent") == 1
    assert at(got, "monitor_detection_to_delivery_seconds_sum") == 65  # queued at detection, sent 65 s later
    assert at(got, "monitor_outbox_alerts", status="sent") == 1
    assert at(got, "monitor_outbox_alerts", status="pending") == 0


def test_a_failing_observer_never_stops_a_delivery(hooked: Store, caplog: pytest.LogCaptureFixture) -> None:
    config = loads(CONFIG, path=Path("t.yaml"), environ={})
    queue_change(hooked, Router.from_config(config), T0)

    def observe(_delivery: Delivery, _alerts: object) -> None:
        raise RuntimeError("metrics broke")

    deliverer = Deliverer(config, hooked, now=lambda: T0, send=lambda *_: None, observe=observe)
    with caplog.at_level(logging.ERROR, logger="monitor.alerts.delivery"):
        [delivery] = deliverer.deliver_due()
    assert delivery.sent
    assert hooked.outbox.counts()["sent"] == 1
    assert any("cannot observe delivery" in r.getMessage() for r in caplog.records)
