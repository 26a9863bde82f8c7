"""Stopping delivery within a bound, on every backend: a pass told to stop finishes the message
in flight, sends no more, and gives back what it took: due again at once with its attempt not
counted, so the next start (or another worker) sends each alert exactly once.

Real components throughout: the outbox on SQLite and PostgreSQL, apprise posting to a webhook
on 127.0.0.1 that answers slowly, and for the service the real shutdown path.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.alerts.delivery import Deliverer
from monitor.alerts.outbox import Alert, AlertStatus
from monitor.alerts.render import Message
from monitor.alerts.routing import Router
from monitor.config import Config, loads
from monitor.models import Change, ChangeClass, Outcome
from monitor.service.runner import Service
from monitor.store import ChangeWrite, CheckWrite, SnapshotWrite, Store
from tests.support.httpserver import LocalServer
from tests.support.receiver import Post, WebhookReceiver
from tests.support.records import versioned_record

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SOURCE = ("stop", "html", "https://example.org/stop")
DELAY = 1.0  # how long the slow webhook takes to answer each message


class SlowReceiver(WebhookReceiver):
    """A webhook that records each POST, then takes ``delay`` seconds to answer it."""

    delay = 0.0

    def _accept(self, post: Post) -> int:
        status = super()._accept(post)
        time.sleep(self.delay)
        return status


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def alert_id(post: Post) -> str:
    [header] = [v for k, v in post.headers.items() if k.lower() == "x-alert-id"]
    return header


def make_config(hooks: dict[str, str], service: str = "{}", source_url: str = SOURCE[2]) -> Config:
    channels = "\n".join(
        f'  - {{name: {name}, url: "{url}", min_class: update}}' for name, url in hooks.items()
    )
    text = (
        f"service: {service}\n"
        f"sources:\n  - {{id: stop, kind: html, url: '{source_url}', interval: 1h}}\n"
        f"alerts:\n{channels}\n"
    )
    return loads(text, path=Path("t.yaml"), environ={})


def queue_alerts(store: Store, config: Config, count: int, at: datetime = T0) -> set[str]:
    """``count`` changes in one check of the source, each queued (due at ``at``) for every channel."""
    keys = [f"K{i:03d}" for i in range(count)]
    store.save_check(
        _check(
            at - timedelta(minutes=1), Outcome.NEW, [SnapshotWrite(k, versioned_record(k, 0)) for k in keys]
        )
    )
    changes = [ChangeWrite(k, Change(k, ChangeClass.SEVERE, ("level raised",), "-a\n+b", 2, 3)) for k in keys]
    store.save_check(
        _check(at, Outcome.CHANGED, [SnapshotWrite(k, versioned_record(k, 1)) for k in keys], changes),
        Router.from_config(config),
    )
    return {a.key for a in store.outbox.alerts()}


def _check(
    at: datetime, outcome: Outcome, snapshots: Sequence[SnapshotWrite], changes: Sequence[ChangeWrite] = ()
) -> CheckWrite:
    return CheckWrite("stop", at, 10, 200, 100, outcome, snapshots=tuple(snapshots), changes=tuple(changes))


def by_key(store: Store) -> dict[str, Alert]:
    return {a.key: a for a in store.outbox.alerts()}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        opened.sync_sources([SOURCE], T0)
        yield opened


def test_a_stopped_pass_ends_after_the_message_in_flight_and_gives_back_the_rest(store: Store) -> None:
    with SlowReceiver() as hook:
        config = make_config({"hook": f"json://127.0.0.1:{hook.port}/hook"})
        keys = queue_alerts(store, config, 20)
        clock = Clock(T0)
        worker = Deliverer(config, store, now=clock, rand=lambda: 0.0)
        hook.fail_next(20)  # a first attempt each, so the count to keep is not just zero
        assert not any(d.sent for d in worker.deliver_due())
        clock.now += timedelta(minutes=1)  # past the backoff: all 20 are due again
        before = by_key(store)
        assert {(a.attempts, a.status) for a in before.values()} == {(1, AlertStatus.PENDING)}

        hook.delay = DELAY
        stop = threading.Event()
        timer = threading.Timer(2.5 * DELAY, stop.set)
        started = time.monotonic()
        timer.start()
        try:
            deliveries = worker.deliver_due(stop)
        finally:
            timer.cancel()
        took = time.monotonic() - started

        # Two messages answered by 2.5 s, the third in flight then: finished and recorded.
        assert took < 3.5 * DELAY + 0.5
        assert len(deliveries) in (2, 3)
        assert all(d.sent for d in deliveries)
        sent = {a.key for a in store.outbox.alerts(AlertStatus.SENT)}
        assert sent == {alert_id(p) for p in hook.posts}
        assert len(sent) == len(deliveries)
        for key, alert in by_key(store).items():
            if key in sent:
                continue
            assert alert.status is AlertStatus.PENDING
            assert alert.next_attempt_at == clock.now  # due at once, not held for a lease
            assert alert.attempts == before[key].attempts  # the claim's attempt taken back

        hook.delay = 0.0
        rest = worker.deliver_due()
        assert len(rest) == 20 - len(sent) and all(d.sent for d in rest)
        assert {d.message_id for d in rest} == keys - sent
        assert worker.deliver_due() == []
        received = Counter(alert_id(p) for p in hook.posts)
        assert received == Counter(keys)  # each alert exactly once, overall
    assert {a.status for a in store.outbox.alerts()} == {AlertStatus.SENT}


def test_each_channel_finishes_its_message_in_flight_then_stops(store: Store) -> None:
    """Deterministic: the stop comes while "a" sends its third message and "b" its first."""
    config = make_config({"a": "json://127.0.0.1:9/a", "b": "json://127.0.0.1:9/b"})
    keys = queue_alerts(store, config, 6)
    stop = threading.Event()
    sent: list[str] = []
    lock = threading.Lock()

    b_sending = threading.Event()

    def send(url: str, message: Message, key: str, change_class: ChangeClass | None) -> str | None:
        if url.endswith("/a"):
            with lock:
                before = sum(1 for k in sent if k.endswith("-a"))
            if before == 2:
                assert b_sending.wait(10)  # however the threads are scheduled, "b" has begun
        with lock:
            sent.append(key)
            if sum(1 for k in sent if k.endswith("-a")) == 3:
                stop.set()
        if url.endswith("/b"):
            b_sending.set()
            assert stop.wait(10)  # "b" is mid-send when the stop comes
        return None

    clock = Clock(T0)
    worker = Deliverer(config, store, now=clock, send=send)
    deliveries = worker.deliver_due(stop)

    assert sorted(k.rsplit("-", 1)[1] for k in sent) == ["a", "a", "a", "b"]
    assert sorted(d.message_id for d in deliveries) == sorted(sent)
    alerts = by_key(store)
    assert {k for k, a in alerts.items() if a.status is AlertStatus.SENT} == set(sent)
    left = {k: a for k, a in alerts.items() if k not in sent}
    assert len(left) == 12 - 4
    assert {(a.status, a.attempts, a.next_attempt_at) for a in left.values()} == {
        (AlertStatus.PENDING, 0, T0)
    }

    assert worker.deliver_due(stop) == []  # still stopping: nothing is taken
    assert by_key(store) == alerts
    later = worker.deliver_due()
    assert sorted(d.message_id for d in later) == sorted(left)
    assert sorted(sent) == sorted(keys)


def test_release_gives_back_only_what_the_claim_still_holds(store: Store) -> None:
    config = make_config({"hook": "json://127.0.0.1:9/hook"})
    queue_alerts(store, config, 3)
    outbox = store.outbox
    first = outbox.claim(T0)
    assert [a.attempts for a in first] == [1, 1, 1]
    taken_over, sent, held = first
    outbox.mark_sent([sent.id], T0)
    # Another worker takes one over after the first worker's lease ran out: a second attempt.
    later = T0 + timedelta(minutes=10)
    other = outbox.claim(later)
    assert [(a.id, a.attempts) for a in other] == [(taken_over.id, 2), (held.id, 2)]
    outbox.release([other[1]], later)  # the other worker gives back held (not taken_over)
    assert outbox.get([held.id])[held.id].attempts == 1

    # The first worker releases its claim: only held (back at its claimed count) changes.
    assert outbox.release(first, later) == 1
    now = outbox.get([a.id for a in first])
    assert (now[held.id].attempts, now[held.id].next_attempt_at) == (0, later)
    assert (now[taken_over.id].attempts, now[taken_over.id].status) == (2, AlertStatus.PENDING)
    assert now[taken_over.id].next_attempt_at == later + timedelta(minutes=10)  # still the other's lease
    assert (now[sent.id].attempts, now[sent.id].status) == (1, AlertStatus.SENT)
    assert outbox.release([], later) == 0


def test_stopping_the_service_bounds_delivery_to_the_grace(store: Store, http_server: LocalServer) -> None:
    http_server.route("/stop", "<html><body><p>Unchanged.</p></body></html>")
    with SlowReceiver() as hook:
        config = make_config(
            {"hook": f"json://127.0.0.1:{hook.port}/hook"},
            service="{shutdown_grace: 1s}",
            source_url=http_server.url("/stop"),
        )
        store.sync_sources([("stop", "html", http_server.url("/stop"))], T0)
        keys = queue_alerts(store, config, 20, at=datetime.now(UTC))
        hook.delay = 0.5

        async def main() -> float:
            service = Service(config, store, rand=lambda: 0.0)
            stop = asyncio.Event()
            running = asyncio.create_task(service.run(stop))
            await asyncio.sleep(0.6)
            stop.set()
            stopping = time.monotonic()
            await running
            return time.monotonic() - stopping

        took = asyncio.run(main())
        # Delivery went on for the grace (1 s), then finished the message in flight (0.5 s).
        assert 0.9 < took < 1.0 + 0.5 + 0.5
        stopped = datetime.now(UTC)
        sent = {a.key for a in store.outbox.alerts(AlertStatus.SENT)}
        assert 0 < len(sent) < 20
        assert sent == {alert_id(p) for p in hook.posts}
        left = [a for a in store.outbox.alerts() if a.key not in sent]
        assert all(a.status is AlertStatus.PENDING and a.attempts == 0 for a in left)
        assert all(a.next_attempt_at <= stopped for a in left)  # none left under a lease
        assert [w.state for w in store.claims.workers()] == ["stopped"]

        hook.delay = 0.0
        rest = Deliverer(config, store).deliver_due()
        assert {d.message_id for d in rest if d.sent} == keys - sent
        assert Counter(alert_id(p) for p in hook.posts) == Counter(keys)
