"""Source health: the pure verdicts, their transitions recorded once on every backend (through the
store and through real checks of a local server), staleness sweeps, routing of health alerts,
and their delivery to a real webhook."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor import healthstore
from monitor.alerts.delivery import Deliverer
from monitor.alerts.outbox import AlertStatus, Purpose
from monitor.alerts.routing import Router
from monitor.config import Config, loads
from monitor.database import AlertRow, HealthEventRow, SourceRow
from monitor.errors import StorageError
from monitor.health import Health, Verdict, after_check, duration_text, staleness
from monitor.healthstore import record, sweep_stale
from monitor.models import Outcome
from monitor.pipeline import CheckReport, check_sources
from monitor.store import CheckWrite, Store
from tests.support.configs import uk_mali_config
from tests.support.httpserver import LocalServer
from tests.support.receiver import WebhookReceiver

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
INTERVAL = timedelta(minutes=15)
PAGE = "<html><body><main><div class='advice'><p>{}</p></div></main></body></html>"
ADVICE = "We advise against all but essential travel to Mali."

# --- the pure verdicts --------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", [o for o in Outcome if o.ok])
def test_every_successful_outcome_is_ok(outcome: Outcome) -> None:
    assert after_check(outcome, 0, 3, None) == Verdict(Health.OK, None)


def test_a_parse_failure_is_unhealthy_at_once() -> None:
    verdict = after_check(Outcome.PARSE_FAILED, 1, 3, "no record found in the payload")
    assert verdict == Verdict(
        Health.UNHEALTHY, "the payload could not be read: no record found in the payload"
    )


def test_a_refusal_is_unhealthy_at_once() -> None:
    verdict = after_check(Outcome.BLOCKED, 1, 3, "HTTP 403 Forbidden")
    assert verdict == Verdict(Health.UNHEALTHY, "the publisher refused the request: HTTP 403 Forbidden")


def test_failed_fetches_are_unhealthy_from_the_broken_after_th_on() -> None:
    assert after_check(Outcome.FAILED, 1, 3, "HTTP 500") is None
    assert after_check(Outcome.FAILED, 2, 3, "HTTP 500") is None
    third = after_check(Outcome.FAILED, 3, 3, "HTTP 500 Internal Server Error")
    assert third == Verdict(
        Health.UNHEALTHY, "3 checks in a row failed; last: HTTP 500 Internal Server Error"
    )
    assert after_check(Outcome.FAILED, 4, 3, "timeout") == Verdict(
        Health.UNHEALTHY, "4 checks in a row failed; last: timeout"
    )
    assert after_check(Outcome.FAILED, 1, 1, None) == Verdict(
        Health.UNHEALTHY, "1 checks in a row failed; last: no error text"
    )


def test_staleness_starts_after_exactly_three_intervals() -> None:
    last = T0
    assert staleness(last, T0 - timedelta(days=1), INTERVAL, T0 + 3 * INTERVAL) is None
    late = T0 + 3 * INTERVAL + timedelta(seconds=1)
    assert staleness(last, T0 - timedelta(days=1), INTERVAL, late) == Verdict(
        Health.UNHEALTHY, "no successful check for 45 min (more than 3× its interval of 15 min)"
    )


def test_staleness_of_a_source_never_checked_counts_from_when_it_was_watched() -> None:
    assert staleness(None, T0, INTERVAL, T0 + 3 * INTERVAL) is None
    verdict = staleness(None, T0, INTERVAL, T0 + timedelta(hours=2, minutes=10))
    assert verdict == Verdict(
        Health.UNHEALTHY,
        "no successful check for 2 h 10 min (more than 3× its interval of 15 min); it never had one",
    )


def test_staleness_ignores_time_before_the_watch_began() -> None:
    """A success long ago does not count against a source watched only since ``watched_since``
    (the service was down in between)."""
    restarted = T0 + timedelta(days=2)
    assert staleness(T0, restarted, INTERVAL, restarted + 3 * INTERVAL) is None
    assert staleness(T0, restarted, INTERVAL, restarted + 3 * INTERVAL + MINUTE) is not None


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(0), "0 s"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(seconds=-5), "0 s"),
        (timedelta(minutes=12, seconds=59), "12 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(hours=2, minutes=10, seconds=3), "2 h 10 min"),
        (timedelta(days=3, hours=4, minutes=5), "3 d 4 h"),
        (timedelta(days=1, minutes=5), "1 d"),
    ],
)
def test_durations_read_as_people_say_them(span: timedelta, text: str) -> None:
    assert duration_text(span) == text


# --- routing ------------------------------------------------------------------------------------

ROUTED = """
sources:
  - {id: uk-mali, kind: html, url: "https://example.org/mali", countries: [ML]}
  - {id: sahel, kind: html, url: "https://example.org/sahel", countries: [ML, BF]}
  - {id: fcdo, kind: uk-fcdo, url: "https://example.org/fcdo"}
alerts:
  - {name: everything, url: "json://127.0.0.1/a", min_class: critical, digest: daily}
  - {name: burkina, url: "json://127.0.0.1/b", countries: [BF]}
  - {name: fcdo-only, url: "json://127.0.0.1/c", sources: [fcdo]}
  - {name: html-pages, url: "json://127.0.0.1/d", kinds: [html]}
  - {name: quiet, url: "json://127.0.0.1/e", health: false}
"""


def test_health_alerts_follow_the_channels_source_kind_and_country_filters() -> None:
    router = Router.from_config(loads(ROUTED, path=Path("t.yaml"), environ={}))
    assert router.health_channels("uk-mali") == ["everything", "html-pages"]
    assert router.health_channels("sahel") == ["everything", "burkina", "html-pages"]
    # A source without countries passes only channels without a country filter.
    assert router.health_channels("fcdo") == ["everything", "fcdo-only"]
    assert router.health_channels("removed") == ["everything"]


# --- transitions in the store -------------------------------------------------------------------

CHANNELS = """
alerts:
  - {name: ops, url: "json://127.0.0.1:9/ops"}
  - {name: mali, url: "json://127.0.0.1:9/mali", countries: [ML], min_class: critical}
  - {name: france, url: "json://127.0.0.1:9/france", countries: [FR]}
  - {name: quiet, url: "json://127.0.0.1:9/quiet", health: false}
"""


def store_config(extra: str = CHANNELS) -> Config:
    sources = """
sources:
  - {id: uk-mali, kind: html, url: "https://example.org/mali", countries: [ML], interval: 15m}
  - {id: sahel, kind: html, url: "https://example.org/sahel", countries: [BF], interval: 1h}
"""
    return loads(sources + extra, path=Path("t.yaml"), environ={})


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        opened.sync_sources([(s.id, s.kind, s.url) for s in store_config().sources], T0)
        yield opened


def check_of(outcome: Outcome, at: datetime, failures: int, source_id: str = "uk-mali") -> CheckWrite:
    error = None if outcome.ok else "HTTP 500 Internal Server Error"
    return CheckWrite(
        source_id=source_id,
        started_at=at,
        duration_ms=5,
        http_status=200 if outcome.ok else 500,
        size=0,
        outcome=outcome,
        error=error,
        health=after_check(outcome, failures, 3, error),
    )


def events(store: Store) -> list[tuple[str, str, datetime, str | None]]:
    query = sa.select(
        HealthEventRow.source_id, HealthEventRow.state, HealthEventRow.at, HealthEventRow.reason
    )
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query.order_by(HealthEventRow.id))]  # type: ignore[misc]


def health_of(store: Store, source_id: str = "uk-mali") -> tuple[str, str | None, datetime | None]:
    query = sa.select(SourceRow.health, SourceRow.health_reason, SourceRow.health_since)
    with store.engine.connect() as conn:
        return tuple(conn.execute(query.where(SourceRow.id == source_id)).one())  # type: ignore[return-value]


def health_alerts(store: Store) -> list[tuple[str, str, str | None]]:
    return sorted(
        (a.key, a.channel, a.health_state) for a in store.outbox.alerts() if a.purpose is Purpose.HEALTH
    )


def test_three_failures_make_one_event_and_one_alert_per_channel_then_one_recovery(store: Store) -> None:
    router = Router.from_config(store_config())
    for n in range(1, 6):
        store.save_check(check_of(Outcome.FAILED, T0 + n * MINUTE, n), router)
        expected = [] if n < 3 else [("uk-mali", "unhealthy", T0 + 3 * MINUTE)]
        assert [e[:3] for e in events(store)] == expected, n
    reason = "3 checks in a row failed; last: HTTP 500 Internal Server Error"
    assert events(store)[0][3] == reason
    assert health_of(store) == ("unhealthy", reason, T0 + 3 * MINUTE)
    assert health_alerts(store) == [
        ("health-1-mali", "mali", "unhealthy"),
        ("health-1-ops", "ops", "unhealthy"),
    ]

    store.save_check(check_of(Outcome.UNCHANGED, T0 + 6 * MINUTE, 0), router)
    store.save_check(check_of(Outcome.NOT_MODIFIED, T0 + 7 * MINUTE, 0), router)
    assert [e[1:3] for e in events(store)] == [
        ("unhealthy", T0 + 3 * MINUTE),
        ("recovered", T0 + 6 * MINUTE),
    ]
    assert health_of(store) == ("ok", None, T0 + 6 * MINUTE)
    assert health_alerts(store)[:2] == [
        ("health-1-mali", "mali", "unhealthy"),
        ("health-1-ops", "ops", "unhealthy"),
    ]
    assert health_alerts(store)[2:] == [
        ("health-2-mali", "mali", "recovered"),
        ("health-2-ops", "ops", "recovered"),
    ]


def test_health_alerts_are_due_at_once_and_about_their_source(store: Store) -> None:
    router = Router.from_config(store_config())
    store.save_check(check_of(Outcome.PARSE_FAILED, T0 + MINUTE, 1), router)
    alerts = {a.channel: a for a in store.outbox.alerts()}
    assert set(alerts) == {"ops", "mali"}
    ops = alerts["ops"]
    assert (ops.purpose, ops.status, ops.batch, ops.next_attempt_at) == (
        Purpose.HEALTH,
        AlertStatus.PENDING,
        None,
        T0 + MINUTE,
    )
    assert (ops.change_id, ops.change_class, ops.record_key, ops.published_at) == (None, None, None, None)
    assert (ops.source_id, ops.detected_at, ops.health_state) == ("uk-mali", T0 + MINUTE, "unhealthy")
    assert ops.health_event_id == events_ids(store)[0]


def events_ids(store: Store) -> list[int]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(HealthEventRow.id).order_by(HealthEventRow.id)).scalars())


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (Outcome.BLOCKED, "the publisher refused the request: HTTP 500 Internal Server Error"),
        (Outcome.PARSE_FAILED, "the payload could not be read: HTTP 500 Internal Server Error"),
    ],
)
def test_a_block_or_a_parse_failure_is_recorded_at_the_first_check(
    store: Store, outcome: Outcome, reason: str
) -> None:
    store.save_check(check_of(outcome, T0 + MINUTE, 1), Router.from_config(store_config()))
    store.save_check(check_of(outcome, T0 + 2 * MINUTE, 2), Router.from_config(store_config()))
    assert events(store) == [("uk-mali", "unhealthy", T0 + MINUTE, reason)]


def test_without_a_router_the_transition_is_recorded_without_alerts(store: Store) -> None:
    store.save_check(check_of(Outcome.BLOCKED, T0 + MINUTE, 1))
    assert [e[1] for e in events(store)] == ["unhealthy"]
    assert store.outbox.alerts() == []


def test_the_health_event_is_written_in_the_checks_transaction(store: Store) -> None:
    """When its alert cannot be queued, neither the check, nor the event, nor the state stay."""
    with store.engine.begin() as conn:  # takes the key the first event's alert will need
        conn.execute(
            sa.insert(AlertRow).values(
                key="health-1-ops", channel="ops", purpose="health", created_at=T0, next_attempt_at=T0
            )
        )
    before = store.counts()
    with pytest.raises(StorageError, match="cannot save a check"):
        store.save_check(check_of(Outcome.BLOCKED, T0 + MINUTE, 1), Router.from_config(store_config()))
    assert store.counts() == before
    assert health_of(store) == ("ok", None, None)


def test_concurrent_recorders_record_one_transition(store: Store) -> None:
    router = Router.from_config(store_config())
    verdict = Verdict(Health.UNHEALTHY, "the publisher refused the request: HTTP 403")
    workers = 6
    barrier = threading.Barrier(workers)
    results: list[int | None] = []
    lock = threading.Lock()

    def recorder(n: int) -> None:
        with store.engine.begin() as conn:
            barrier.wait()
            event = record(conn, "uk-mali", verdict, T0 + n * timedelta(seconds=1), router)
        with lock:
            results.append(event)

    threads = [threading.Thread(target=recorder, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == workers
    assert len([r for r in results if r is not None]) == 1
    assert len(events(store)) == 1
    assert len(health_alerts(store)) == 2


def test_record_refuses_a_naive_time(store: Store) -> None:
    with store.engine.begin() as conn, pytest.raises(ValueError, match="naive"):
        record(conn, "uk-mali", Verdict(Health.OK), datetime(2026, 1, 1), None)


# --- staleness ----------------------------------------------------------------------------------


def test_sweep_marks_a_stale_source_once_and_a_success_recovers_it(store: Store) -> None:
    config = store_config()
    router = Router.from_config(config)
    intervals = {s.id: config.interval_of(s) for s in config.sources}
    store.save_check(check_of(Outcome.UNCHANGED, T0 + MINUTE, 0, "sahel"), router)

    assert sweep_stale(store, intervals, T0 + 3 * INTERVAL, router) == []
    [first] = sweep_stale(store, intervals, T0 + 3 * INTERVAL + timedelta(seconds=1), router)
    assert sweep_stale(store.engine, intervals, T0 + 3 * INTERVAL + timedelta(hours=1), router) == []
    # sahel checks hourly and last succeeded at T0 + 1 min: stale only after T0 + 3 h 1 min.
    [second] = sweep_stale(store, intervals, T0 + timedelta(hours=3, minutes=2), router)

    assert events(store) == [
        (
            "uk-mali",
            "unhealthy",
            T0 + 3 * INTERVAL + timedelta(seconds=1),
            "no successful check for 45 min (more than 3× its interval of 15 min); it never had one",
        ),
        (
            "sahel",
            "unhealthy",
            T0 + timedelta(hours=3, minutes=2),
            "no successful check for 3 h 1 min (more than 3× its interval of 1 h)",
        ),
    ]
    assert events_ids(store) == [first, second]
    assert {(a.channel, a.source_id) for a in store.outbox.alerts()} == {
        ("ops", "uk-mali"),
        ("mali", "uk-mali"),
        ("ops", "sahel"),
    }

    store.save_check(check_of(Outcome.UNCHANGED, T0 + timedelta(hours=4), 0), router)
    assert [e[:2] for e in events(store)][-1] == ("uk-mali", "recovered")


def test_sweep_leaves_inactive_sources_unknown_intervals_and_time_before_the_start_alone(
    store: Store,
) -> None:
    config = store_config()
    router = Router.from_config(config)
    later = T0 + timedelta(days=1)
    started = later - 2 * INTERVAL
    assert sweep_stale(store, {"uk-mali": INTERVAL}, later, router, not_before=started) == []
    assert sweep_stale(store, {"unknown": INTERVAL}, later, router) == []
    store.sync_sources([("uk-mali", "html", "https://example.org/mali")], later)  # sahel leaves
    assert sweep_stale(store, {"sahel": timedelta(hours=1)}, later, router) == []
    assert events(store) == []


def test_sweep_does_not_mark_a_source_that_succeeded_after_it_looked(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write re-checks the last success: a check that succeeds between the sweep's read and
    its write wins."""
    late = T0 + timedelta(hours=1)

    def judged_while_a_check_succeeds(*args: Any) -> Verdict | None:
        store.save_check(check_of(Outcome.UNCHANGED, late, 0))
        return staleness(*args)

    monkeypatch.setattr(healthstore, "staleness", judged_while_a_check_succeeds)
    assert sweep_stale(store, {"uk-mali": INTERVAL}, late, Router.from_config(store_config())) == []
    assert events(store) == []
    assert health_of(store) == ("ok", None, None)


# --- through real checks, delivered to a real webhook -------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def check(config: Config, store: Store, clock: Clock) -> CheckReport:
    clock.now += MINUTE
    [report] = asyncio.run(check_sources(config, store, now=clock))
    return report


def test_a_failing_then_recovering_source_is_alerted_once_each_way_to_a_real_webhook(
    http_server: LocalServer, database_url: str
) -> None:
    with WebhookReceiver() as hook, Store.open(database_url) as store:
        config = uk_mali_config(
            http_server,
            f'  - {{name: chat, url: "json://127.0.0.1:{hook.port}/hook"}}\n'
            f'  - {{name: other, url: "json://127.0.0.1:{hook.port}/other", countries: [FR]}}',
        )
        clock = Clock(datetime.now(UTC).replace(microsecond=0))
        store.sync_sources([(s.id, s.kind, s.url) for s in config.sources], clock.now)
        deliverer = Deliverer(config, store, now=clock, rand=lambda: 0.0)
        http_server.route("/mali", PAGE.format(ADVICE))
        assert check(config, store, clock).outcome is Outcome.NEW
        http_server.route("/mali", "down for maintenance", status=500)
        outcomes = [check(config, store, clock).outcome for _ in range(5)]
        assert outcomes == [Outcome.FAILED] * 5
        unhealthy = deliverer.deliver_due()
        [down] = hook.wait_for(1)
        http_server.route("/mali", PAGE.format(ADVICE))
        clock.now += timedelta(hours=2)
        assert check(config, store, clock).outcome is Outcome.UNCHANGED
        recovered = deliverer.deliver_due()
        posts = hook.wait_for(2)
        assert deliverer.deliver_due() == []
        alerts = store.outbox.alerts()

    assert [(d.channel, d.message_id, d.sent) for d in unhealthy] == [("chat", "health-1-chat", True)]
    assert [(d.channel, d.message_id, d.sent) for d in recovered] == [("chat", "health-2-chat", True)]
    assert len(posts) == 2 and all(p.path == "/hook" for p in posts)
    assert down.headers["X-Alert-Id"] == "health-1-chat"
    assert down.json["title"] == "[source unhealthy] uk-mali — UK FCDO: 3 checks in a row failed"
    assert down.json["type"] == "info"
    body = down.json["message"]
    assert "Why: 3 checks in a row failed; last: HTTP 500" in body
    assert "Last error: HTTP 500" in body
    assert f"Source: {http_server.url('/mali')}" in body
    assert body.rstrip().endswith("Alert id: health-1-chat")
    back = posts[1]
    assert back.headers["X-Alert-Id"] == "health-2-chat"
    assert back.json["title"] == "[source recovered] uk-mali — UK FCDO: works again after 2 h 3 min"
    assert "The source works again, after 2 h 3 min unhealthy." in back.json["message"]
    assert [(a.key, a.status) for a in alerts] == [
        ("health-2-chat", AlertStatus.SENT),
        ("health-1-chat", AlertStatus.SENT),
    ]
