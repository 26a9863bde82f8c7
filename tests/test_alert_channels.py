"""Alerts delivered through apprise to real services on 127.0.0.1: an SMTP server, a JSON webhook,
a self-hosted ntfy endpoint and the MQTT broker.

Every test makes a real change (a page served locally goes from "all but essential travel" to
"leave now"), lets the pipeline queue its alerts, and runs the real deliverer. Time only moves
through an injected clock and jitter is fixed, so retries are exact and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

from monitor.alerts.delivery import Deliverer
from monitor.alerts.outbox import Alert, AlertStatus, Purpose
from monitor.config import Config
from monitor.models import ChangeClass, Outcome
from monitor.pipeline import CheckReport, check_sources
from monitor.store import Store
from tests.support.configs import uk_mali_config
from tests.support.httpserver import LocalServer
from tests.support.mqtt import Subscriber, broker_or_skip
from tests.support.ports import free_port
from tests.support.receiver import Post, WebhookReceiver
from tests.support.smtp import SmtpServer

PAGE = "<html><body><main><div class='advice'><p>{}</p></div></main></body></html>"
BEFORE = "We advise against all but essential travel to Mali."
LEAVE = "British nationals in Mali should leave now by commercial means."
AFTER = f"We advise against all travel to Mali. {LEAVE}"
TITLE = "[CRITICAL] Mali — UK FCDO: nationals urged to leave"
FROM_TO = "from=monitor@example.org&to=security@example.org&mode=insecure"
# The first retry waits 30 s, halved by the jitter when the random draw is 0.
FIRST_RETRY = timedelta(seconds=15)
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


class Clock:
    """A clock that moves only when told to; starts at the real time (alerts are queued then)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as store:
        yield store


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    with Store.open(sqlite_url) as store:
        yield store


def check(config: Config, store: Store) -> CheckReport:
    store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), datetime.now(UTC))
    [report] = asyncio.run(check_sources(config, store))
    return report


def publish(server: LocalServer, config: Config, store: Store, text: str) -> CheckReport:
    """Serve ``text`` as the advice and check the source once."""
    server.route("/mali", PAGE.format(text))
    return check(config, store)


def critical_change(server: LocalServer, config: Config, store: Store) -> None:
    """The first snapshot, then the "leave now" change: one critical change, alerts queued."""
    assert publish(server, config, store, BEFORE).outcome is Outcome.NEW
    report = publish(server, config, store, AFTER)
    assert [c.change_class for c in report.changes] == [ChangeClass.CRITICAL]


def deliverer(config: Config, store: Store, clock: Clock) -> Deliverer:
    return Deliverer(config, store, now=clock, rand=lambda: 0.0)


def alerts_by_channel(store: Store) -> dict[str, Alert]:
    alerts = store.outbox.alerts()
    by_channel = {alert.channel: alert for alert in alerts}
    assert len(by_channel) == len(alerts), alerts
    return by_channel


def assert_plain_alert(post: Post, alert_id: str, page_url: str) -> None:
    """A chat/webhook message: the subject as title, plain text with the key facts."""
    body = post.json
    assert body["title"] == TITLE
    message = body["message"]
    assert LEAVE in message
    assert f"Official page: {page_url}" in message
    assert f"Alert id: {alert_id}" in message
    assert _TAG.search(message) is None, message


# --- email ------------------------------------------------------------------------------------


def test_email_is_multipart_with_the_subject_the_facts_and_the_alert_id(
    http_server: LocalServer, store: Store
) -> None:
    with SmtpServer() as smtp:
        url = f"mailto://127.0.0.1:{smtp.port}?{FROM_TO}"
        config = uk_mali_config(http_server, f'  - {{name: mail, url: "{url}"}}')
        critical_change(http_server, config, store)
        [delivery] = Deliverer(config, store).deliver_due()
        assert delivery.sent, delivery.error
        [mail] = smtp.wait_for(1)

    assert mail.rcpt_tos == ("security@example.org",)
    assert mail.mail_from == "monitor@example.org"
    assert mail.login is None
    message = mail.message
    assert message["Subject"] == TITLE
    assert message["X-Alert-Id"] == "change-1-mail"
    assert message.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content() for part in message.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    page_url = http_server.url("/mali")
    for body in parts.values():
        assert LEAVE in body
        assert "Official page" in body
        assert page_url in body
        assert "Alert id: change-1-mail" in _TAG.sub("", body)
    assert _TAG.search(parts["text/plain"]) is None
    assert f'href="{page_url}"' in parts["text/html"]

    [alert] = store.outbox.alerts()
    assert (alert.key, alert.status, alert.attempts) == ("change-1-mail", AlertStatus.SENT, 1)
    assert alert.sent_at is not None and alert.last_error is None


def test_email_to_a_server_that_starts_late_is_retried_and_the_password_never_shows(
    http_server: LocalServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "S3cr3t-pass"
    port = free_port()
    url = f"mailto://alerts:{password}@127.0.0.1:{port}?{FROM_TO}"
    config = uk_mali_config(http_server, f'  - {{name: mail, url: "{url}"}}')
    critical_change(http_server, config, store)
    clock = Clock()
    worker = deliverer(config, store, clock)

    [failed] = worker.deliver_due()  # nothing listens on the port yet
    assert not failed.sent and not failed.gave_up
    [alert] = store.outbox.alerts()
    assert (alert.status, alert.attempts) == (AlertStatus.PENDING, 1)
    assert alert.last_error and "127.0.0.1" in alert.last_error
    assert alert.next_attempt_at == clock.now + FIRST_RETRY
    assert worker.deliver_due() == []  # not due before the backoff ends

    with SmtpServer(port, users={"alerts": password}) as smtp:
        clock.advance(FIRST_RETRY.total_seconds() + 1)
        [delivery] = worker.deliver_due()
        assert delivery.sent, delivery.error
        [mail] = smtp.wait_for(1)

    assert mail.login == "alerts"  # the password reached the server, and only the server
    assert mail.message["Subject"] == TITLE
    [alert] = store.outbox.alerts()
    assert (alert.status, alert.attempts, alert.last_error) == (AlertStatus.SENT, 2, None)
    assert any("failed (attempt 1)" in record.getMessage() for record in caplog.records)
    for shown in (failed.error or "", caplog.text, *(r.getMessage() for r in caplog.records)):
        assert password not in shown and quote(password) not in shown


# --- webhook and chat -------------------------------------------------------------------------


def test_webhook_gets_a_plain_text_message_and_the_alert_id(http_server: LocalServer, store: Store) -> None:
    with WebhookReceiver() as hook:
        config = uk_mali_config(http_server, f'  - {{name: chat, url: "json://127.0.0.1:{hook.port}/hook"}}')
        critical_change(http_server, config, store)
        [delivery] = Deliverer(config, store).deliver_due()
        assert delivery.sent, delivery.error
        [post] = hook.wait_for(1)

    assert post.path == "/hook"
    assert post.headers["X-Alert-Id"] == "change-1-chat"
    assert post.json["type"] == "failure"  # apprise's most urgent type, for a critical change
    assert_plain_alert(post, "change-1-chat", http_server.url("/mali"))
    assert alerts_by_channel(store)["chat"].status is AlertStatus.SENT


def test_webhook_that_fails_twice_gets_the_alert_once_after_backoff(
    http_server: LocalServer, store: Store
) -> None:
    with WebhookReceiver() as hook:
        config = uk_mali_config(http_server, f'  - {{name: chat, url: "json://127.0.0.1:{hook.port}/hook"}}')
        critical_change(http_server, config, store)
        hook.fail_next(2)  # 503 Service Unavailable
        clock = Clock()
        worker = deliverer(config, store, clock)

        [first] = worker.deliver_due()
        assert first.error and "503" in first.error
        alert = alerts_by_channel(store)["chat"]
        assert (alert.status, alert.attempts) == (AlertStatus.PENDING, 1)
        assert alert.next_attempt_at == clock.now + FIRST_RETRY
        assert worker.deliver_due() == []

        clock.advance(16)
        [second] = worker.deliver_due()
        assert second.error and "503" in second.error
        alert = alerts_by_channel(store)["chat"]
        assert alert.attempts == 2
        assert alert.next_attempt_at == clock.now + 2 * FIRST_RETRY  # the wait doubles
        clock.advance(29)
        assert worker.deliver_due() == []

        clock.advance(2)
        [third] = worker.deliver_due()
        assert third.sent, third.error
        clock.advance(24 * 3600)
        assert worker.deliver_due() == []
        time.sleep(0.1)  # a stray duplicate would have arrived by now
        posts = hook.posts

    assert len(posts) == 1
    assert posts[0].headers["X-Alert-Id"] == "change-1-chat"
    assert_plain_alert(posts[0], "change-1-chat", http_server.url("/mali"))
    alert = alerts_by_channel(store)["chat"]
    assert (alert.status, alert.attempts, alert.last_error) == (AlertStatus.SENT, 3, None)


def test_ntfy_to_a_self_hosted_server_posts_the_title_and_message(
    http_server: LocalServer, sqlite_store: Store
) -> None:
    # A ntfy:// URL with a host is a self-hosted server over plain http ("mode=private"); apprise
    # publishes as JSON to the server's root with the topic in the body.
    with WebhookReceiver() as hook:
        url = f"ntfy://127.0.0.1:{hook.port}/advisories"
        config = uk_mali_config(http_server, f'  - {{name: phone, url: "{url}"}}')
        critical_change(http_server, config, sqlite_store)
        [delivery] = Deliverer(config, sqlite_store).deliver_due()
        assert delivery.sent, delivery.error
        [post] = hook.wait_for(1)

    assert post.path == "/"
    assert post.json["topic"] == "advisories"
    assert_plain_alert(post, "change-1-phone", http_server.url("/mali"))
    assert alerts_by_channel(sqlite_store)["phone"].status is AlertStatus.SENT


def test_mqtt_publishes_the_alert_to_the_topic(http_server: LocalServer, sqlite_store: Store) -> None:
    host, port = broker_or_skip()
    topic = f"advisories/test-{uuid.uuid4().hex}"
    config = uk_mali_config(http_server, f'  - {{name: bus, url: "mqtt://{host}:{port}/{topic}"}}')
    critical_change(http_server, config, sqlite_store)
    with Subscriber(topic, (host, port)) as subscriber:
        [delivery] = Deliverer(config, sqlite_store).deliver_due()
        assert delivery.sent, delivery.error
        [message] = subscriber.wait_for(1)

    assert message.topic == topic
    payload = message.payload.decode()
    assert payload.startswith(TITLE)
    assert LEAVE in payload
    assert "Alert id: change-1-bus" in payload
    assert alerts_by_channel(sqlite_store)["bus"].status is AlertStatus.SENT


# --- several channels -------------------------------------------------------------------------


def test_a_failing_channel_never_holds_up_the_others(http_server: LocalServer, sqlite_store: Store) -> None:
    down = free_port()
    with WebhookReceiver() as hook:
        config = uk_mali_config(
            http_server,
            f'  - {{name: mail, url: "mailto://127.0.0.1:{down}?{FROM_TO}"}}\n'
            f'  - {{name: chat, url: "json://127.0.0.1:{hook.port}/hook"}}',
        )
        critical_change(http_server, config, sqlite_store)
        deliveries = {d.channel: d for d in Deliverer(config, sqlite_store).deliver_due()}
        [post] = hook.wait_for(1)

    assert deliveries["chat"].sent
    assert deliveries["mail"].error and not deliveries["mail"].gave_up
    assert post.headers["X-Alert-Id"] == "change-1-chat"
    alerts = alerts_by_channel(sqlite_store)
    assert (alerts["chat"].status, alerts["chat"].last_error) == (AlertStatus.SENT, None)
    assert (alerts["mail"].status, alerts["mail"].attempts) == (AlertStatus.PENDING, 1)
    assert alerts["mail"].last_error == deliveries["mail"].error


def test_routing_decides_who_hears_of_an_escalation_and_its_relaxation(
    http_server: LocalServer, store: Store
) -> None:
    with WebhookReceiver() as hook:
        base = f"json://127.0.0.1:{hook.port}"
        config = uk_mali_config(
            http_server,
            f'  - {{name: mali-desk, url: "{base}/mali-desk", countries: [ML]}}\n'
            f'  - {{name: duty-officer, url: "{base}/duty-officer", min_class: critical}}\n'
            f'  - {{name: burkina, url: "{base}/burkina", countries: [BF], min_class: noise}}',
        )
        critical_change(http_server, config, store)
        clock = Clock()
        sent = deliverer(config, store, clock).deliver_due()
        assert sorted((d.channel, d.title) for d in sent if d.sent) == [
            ("duty-officer", TITLE),
            ("mali-desk", TITLE),
        ]
        hook.wait_for(2)

        # Back to the earlier advice: the risk went down.
        relaxed = publish(http_server, config, store, BEFORE)
        assert [c.change_class for c in relaxed.changes] == [ChangeClass.RELAXED]
        clock.now = datetime.now(UTC)
        sent = deliverer(config, store, clock).deliver_due()
        assert sorted(d.channel for d in sent if d.sent) == ["duty-officer", "mali-desk"]
        posts = hook.wait_for(4)

        # A routine addition reaches nobody here: below every channel's threshold, or elsewhere.
        update = publish(http_server, config, store, f"{BEFORE} Carry identification at all times.")
        assert [c.change_class for c in update.changes] == [ChangeClass.UPDATE]
        clock.now = datetime.now(UTC)
        assert deliverer(config, store, clock).deliver_due() == []

    received = sorted((post.path, post.json["title"].split("]")[0] + "]") for post in posts)
    assert received == [
        ("/duty-officer", "[CRITICAL]"),
        ("/duty-officer", "[RELAXED]"),
        ("/mali-desk", "[CRITICAL]"),
        ("/mali-desk", "[RELAXED]"),
    ]
    relaxed_posts = [post for post in posts if post.json["title"].startswith("[RELAXED]")]
    assert all(post.json["title"].startswith("[RELAXED] Mali — UK FCDO") for post in relaxed_posts)
    assert {post.headers["X-Alert-Id"] for post in relaxed_posts} == {
        "change-2-mali-desk",
        "change-2-duty-officer",
    }
    assert not any(alert.channel == "burkina" for alert in store.outbox.alerts())


def test_an_alert_that_cannot_be_delivered_is_reported_to_the_failure_channels(
    http_server: LocalServer, store: Store
) -> None:
    password = "Sup3rS3cret"
    with WebhookReceiver() as hook:
        config = uk_mali_config(
            http_server,
            f'  - {{name: bad, url: "json://ops:{password}@127.0.0.1:{free_port()}/hook", max_attempts: 2}}\n'
            f'  - {{name: ops, url: "json://127.0.0.1:{hook.port}/ops", report_failures: true,'
            " countries: [BF]}",
        )
        critical_change(http_server, config, store)
        clock = Clock()
        worker = deliverer(config, store, clock)

        [first] = worker.deliver_due()
        assert first.error and not first.gave_up
        clock.advance(FIRST_RETRY.total_seconds() + 1)
        [second] = worker.deliver_due()
        assert second.error and second.gave_up
        bad = alerts_by_channel(store)["bad"]
        assert (bad.status, bad.attempts) == (AlertStatus.FAILED, 2)

        [report] = worker.deliver_due()  # the failure report is due at once
        assert report.sent, report.error
        [post] = hook.wait_for(1)

    assert post.path == "/ops"
    assert post.json["title"] == f"[DELIVERY FAILED] bad: {TITLE}"
    assert "change-1-bad" in post.json["message"]
    assert "127.0.0.1" in post.json["message"]  # what went wrong, as recorded
    assert post.headers["X-Alert-Id"] == f"failure-{bad.id}-ops"
    alerts = alerts_by_channel(store)
    assert (alerts["ops"].purpose, alerts["ops"].status) == (Purpose.FAILURE, AlertStatus.SENT)
    assert alerts["ops"].about_alert_id == bad.id
    for text in (post.body.decode(), bad.last_error or "", second.error):
        assert password not in text


class _GatedFailingHook:
    """Answers every POST with 503, but only once ``answer`` is set (or after 5 s); ``in_flight``
    is set when a POST arrives. A channel whose send lasts as long as a test needs."""

    def __init__(self, answer: threading.Event) -> None:
        self.in_flight = threading.Event()
        in_flight = self.in_flight

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                in_flight.set()
                answer.wait(5)
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True

    def __enter__(self) -> _GatedFailingHook:
        threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])


class _Interleave(logging.Filter):
    """On apprise's logger: holds the send that would reveal ``secret`` until ``in_flight`` is set
    (another channel's send has begun) and sets ``failure_logged`` once that send's failure is
    logged. Makes the overlap of two parallel sends certain instead of likely."""

    def __init__(self, secret: str, in_flight: threading.Event, failure_logged: threading.Event) -> None:
        super().__init__()
        self.secret, self.in_flight, self.failure_logged = secret, in_flight, failure_logged

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            if "POST URL" in message:
                self.in_flight.wait(5)
            elif "Exception" in message:
                self.failure_logged.set()
        return True


def test_the_error_stored_for_one_channel_never_holds_another_channels_secret(
    http_server: LocalServer, sqlite_store: Store
) -> None:
    token = "abcdefTOKEN12345"
    answer = threading.Event()
    with _GatedFailingHook(answer) as slow:
        config = uk_mali_config(
            http_server,
            f'  - {{name: slow, url: "json://127.0.0.1:{slow.port}/hook"}}\n'
            f'  - {{name: team, url: "mmost://127.0.0.1:{free_port()}/{token}"}}',
        )
        critical_change(http_server, config, sqlite_store)
        interleave = _Interleave(token, slow.in_flight, answer)
        apprise_logger = logging.getLogger("apprise")
        apprise_logger.addFilter(interleave)
        try:
            deliveries = Deliverer(config, sqlite_store).deliver_due()
        finally:
            apprise_logger.removeFilter(interleave)

    assert answer.is_set() and slow.in_flight.is_set()  # the two sends did overlap
    assert sorted(d.channel for d in deliveries if not d.sent) == ["slow", "team"]
    alerts = alerts_by_channel(sqlite_store)
    assert alerts["team"].last_error and token not in alerts["team"].last_error
    assert alerts["slow"].last_error and token not in alerts["slow"].last_error
