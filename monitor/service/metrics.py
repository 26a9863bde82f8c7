"""The service's Prometheus metrics, in a registry of their own.

Per-process counters and histograms (each worker counts what it did itself; sum them across
workers)::

    monitor_checks_total{source, outcome}         checks made, by outcome
    monitor_check_duration_seconds{source}        how long each check took
    monitor_fetched_bytes_total{source}           bytes received from publishers
    monitor_not_modified_ratio                    share of HTTP answers that were 304 (NaN before any)
    monitor_changes_total{class}                  changes detected, by class
    monitor_alerts_total{channel, outcome}        alerts sent | retry | failed (a digest counts each)
    monitor_publication_to_detection_seconds      publisher's own time of a change -> our check
    monitor_detection_to_delivery_seconds         detection of a change -> an alert's delivery

Read from the shared database at every scrape (identical on every worker of one database; take
``max`` rather than ``sum`` across workers)::

    monitor_outbox_alerts{status}                 alerts in the outbox, by status
    monitor_source_staleness_seconds{source}      time since the last successful check
                                                  (sources never checked successfully are left out)
    monitor_source_failures{source}               consecutive failed checks
    monitor_database_up                           1 when the reads above worked, else 0

Per-process state, not counters::

    monitor_scheduler_running                     1 while this process's scheduler runs
    monitor_source_interval_seconds{source}       the configured check interval, so that staleness
                                                  can be compared with it in an alerting rule
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from monitor.alerts.delivery import Delivery
from monitor.alerts.outbox import Alert, Purpose
from monitor.models import ChangeClass, Outcome
from monitor.pipeline import CheckReport
from monitor.store import Store

log = logging.getLogger(__name__)

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
# Checks: a quick 304 takes tens of milliseconds; a browser-rendered page up to the 2 min timeout.
CHECK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
# Publishers often date their pages to the day, so this latency is read in hours and days.
PUBLICATION_BUCKETS = (
    MINUTE,
    5 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    4 * DAY,
    7 * DAY,
)
# Immediate alerts go out within seconds; digests wait up to a day by design.
DELIVERY_BUCKETS = (
    1.0,
    5.0,
    15.0,
    30.0,
    MINUTE,
    5 * MINUTE,
    15 * MINUTE,
    HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
)


class Metrics:
    """The service's Prometheus metrics in their own registry (never the global one).

    Thread-safe: checks and deliveries are observed from several threads while a scrape reads.
    The names and meanings are listed in the module docstring."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._answered = 0  # checks that got an HTTP answer: every ok outcome, 304 included
        self._not_modified = 0
        self._checks = Counter(
            "monitor_checks",
            "Checks made, by source and outcome.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "monitor_check_duration_seconds",
            "How long a check took.",
            ["source"],
            buckets=CHECK_BUCKETS,
            registry=self.registry,
        )
        self._bytes = Counter(
            "monitor_fetched_bytes", "Bytes received from publishers.", ["source"], registry=self.registry
        )
        ratio = Gauge(
            "monitor_not_modified_ratio",
            "Share of this process's checks answered over HTTP that got 304 Not Modified.",
            registry=self.registry,
        )
        ratio.set_function(self._not_modified_ratio)
        self._changes = Counter(
            "monitor_changes", "Changes detected, by class.", ["class"], registry=self.registry
        )
        for change_class in ChangeClass:
            self._changes.labels(change_class.value)  # every class shows, at 0, from the start
        self._alerts = Counter(
            "monitor_alerts",
            "Alerts by channel and delivery outcome (sent, retry, failed); a digest counts each alert.",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self._publication = Histogram(
            "monitor_publication_to_detection_seconds",
            "From the publisher's own time of a change to the check that detected it.",
            buckets=PUBLICATION_BUCKETS,
            registry=self.registry,
        )
        self._delivery = Histogram(
            "monitor_detection_to_delivery_seconds",
            "From the detection of a change to the successful delivery of an alert about it.",
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )

    def observe_check(self, report: CheckReport) -> None:
        """Count one finished check, its bytes, duration and changes."""
        source = report.source_id
        self._checks.labels(source, report.outcome.value).inc()
        self._duration.labels(source).observe(report.duration_ms / 1000)
        self._bytes.labels(source).inc(report.bytes)
        with self._lock:
            self._answered += report.outcome.ok
            self._not_modified += report.outcome is Outcome.NOT_MODIFIED
        for change in report.changes:
            self._changes.labels(change.change_class.value).inc()
            if change.published_at is not None:
                # A publisher's clock or a date without a time can put publication after our check.
                lag = (report.started_at - change.published_at).total_seconds()
                self._publication.observe(max(0.0, lag))

    def observe_delivery(self, delivery: Delivery, alerts: Sequence[Alert], now: datetime) -> None:
        """Count the ``alerts`` of one delivery; for a sent one, how long each alert about a
        change waited since the change was detected (its ``created_at``: alerts are queued in
        the transaction that writes their change). Health alerts and failure reports are
        counted but not timed: they follow no detection."""
        self._alerts.labels(delivery.channel, _outcome(delivery)).inc(len(alerts))
        if delivery.sent:
            for alert in alerts:
                if alert.purpose is Purpose.CHANGE:
                    waited = (now - _aware(alert.created_at)).total_seconds()
                    self._delivery.observe(max(0.0, waited))

    def watch(
        self,
        store: Store,
        intervals: Mapping[str, timedelta],
        now: Callable[[], datetime],
        running: Callable[[], bool],
    ) -> None:
        """Read the database's gauges from ``store`` at every scrape, with ``now`` as the time,
        ``running`` telling whether the scheduler runs and ``intervals`` the configured interval
        per source id. Call once: a second call raises ``ValueError`` (duplicate metrics)."""
        self.registry.register(_DatabaseCollector(store, intervals, now, running))

    def _not_modified_ratio(self) -> float:
        with self._lock:
            return self._not_modified / self._answered if self._answered else math.nan


def _outcome(delivery: Delivery) -> str:
    if delivery.sent:
        return "sent"
    return "failed" if delivery.gave_up else "retry"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class _DatabaseCollector:
    """The gauges read from the database at scrape time; a database error never fails a scrape:
    it shows as ``monitor_database_up 0`` and the database's gauges are left out."""

    def __init__(
        self,
        store: Store,
        intervals: Mapping[str, timedelta],
        now: Callable[[], datetime],
        running: Callable[[], bool],
    ) -> None:
        self._store, self._now, self._running = store, now, running
        self._intervals = dict(intervals)
        self._was_up = True  # log once per outage, not at every scrape

    def describe(self) -> Iterable[Metric]:
        # Named without reading the database, so that registering never touches it.
        return [*_database_families(), _up(), *_local_families()]

    def collect(self) -> Iterator[Metric]:
        up = _up()
        try:
            families = self._read()
        except Exception as exc:  # whatever the database does, the scrape answers
            self._note_down(exc)
            up.add_metric([], 0)
        else:
            self._note_up()
            up.add_metric([], 1)
            yield from families
        yield up
        yield from self._local()

    def _read(self) -> list[GaugeMetricFamily]:
        counts = self._store.outbox.counts()
        statuses = self._store.statuses()
        now = self._now()
        outbox, staleness, failures = _database_families()
        for status, count in sorted(counts.items()):
            outbox.add_metric([status], count)
        for source in statuses:
            failures.add_metric([source.id], source.consecutive_failures)
            if source.last_success_at is not None:
                # Workers' clocks may differ slightly; a success "in the future" is fresh, not negative.
                age = (now - _aware(source.last_success_at)).total_seconds()
                staleness.add_metric([source.id], max(0.0, age))
        return [outbox, staleness, failures]

    def _local(self) -> list[GaugeMetricFamily]:
        running, interval = _local_families()
        try:
            is_running = bool(self._running())
        except Exception:
            log.exception("cannot tell whether the scheduler runs")
            is_running = False
        running.add_metric([], int(is_running))
        for source_id, every in sorted(self._intervals.items()):
            interval.add_metric([source_id], every.total_seconds())
        return [running, interval]

    def _note_down(self, exc: Exception) -> None:
        # A scrape comes every few seconds: warn when the outage starts, not at each one.
        level = logging.WARNING if self._was_up else logging.DEBUG
        log.log(level, "metrics: cannot read the database: %s", exc)
        self._was_up = False

    def _note_up(self) -> None:
        if not self._was_up:
            log.info("metrics: the database answers again")
        self._was_up = True


def _database_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    return (
        GaugeMetricFamily("monitor_outbox_alerts", "Alerts in the outbox, by status.", labels=["status"]),
        GaugeMetricFamily(
            "monitor_source_staleness_seconds",
            "Time since the source's last successful check.",
            labels=["source"],
        ),
        GaugeMetricFamily(
            "monitor_source_failures", "Consecutive failed checks of the source.", labels=["source"]
        ),
    )


def _up() -> GaugeMetricFamily:
    return GaugeMetricFamily("monitor_database_up", "1 when the database answered this scrape, else 0.")


def _local_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    return (
        GaugeMetricFamily("monitor_scheduler_running", "1 while this process's scheduler runs, else 0."),
        GaugeMetricFamily(
            "monitor_source_interval_seconds",
            "The configured check interval of the source.",
            labels=["source"],
        ),
    )
