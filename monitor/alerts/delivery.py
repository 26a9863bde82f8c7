"""Delivery: take due alerts from the outbox, send them through apprise, record what happened.

Every channel is served by its own worker thread, so a slow or failing channel never holds the
others up. A failed attempt is retried with exponential backoff and jitter; after the channel's
``max_attempts`` the alert is marked failed and, where configured, reported to other channels.
Nothing here raises for a delivery problem: outcomes are returned and recorded. A pass told to
stop ends each channel after the message in flight and gives the rest back to the outbox.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import apprise
from apprise.plugins.base import NotifyBase
from apprise.plugins.email import NotifyEmail

from monitor.alerts import applog
from monitor.alerts.outbox import LEASE, Alert, ChangeDetails, HealthDetails, Purpose
from monitor.alerts.render import (
    SEVERITY,
    AlertView,
    HealthView,
    Message,
    format_utc,
    render_alert,
    render_digest,
    render_failure,
    render_health,
    render_test,
)
from monitor.alerts.routing import failure_recipients
from monitor.config import AlertChannel, Config
from monitor.display import markdown_text
from monitor.health import Transition
from monitor.models import ChangeClass, Notice, Record
from monitor.pipeline import Clock, utcnow
from monitor.store import Store

log = logging.getLogger(__name__)
applog.isolate()  # apprise's services log secrets; only what a send captures is kept, scrubbed

# (apprise URL, message, stable alert id, change class) -> None when sent, else what went wrong
# (secret-free). Tests and other transports can stand in for apprise here.
Sender = Callable[[str, Message, str, ChangeClass | None], str | None]

FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
MAX_PARALLEL_CHANNELS = 8

_NOTIFY_TYPES: dict[ChangeClass | None, apprise.NotifyType] = {
    ChangeClass.CRITICAL: apprise.NotifyType.FAILURE,
    ChangeClass.SEVERE: apprise.NotifyType.FAILURE,
    ChangeClass.HEIGHTENED: apprise.NotifyType.WARNING,
    ChangeClass.RELAXED: apprise.NotifyType.SUCCESS,
}


def backoff(attempt: int, rand: float) -> timedelta:
    """The wait after the ``attempt``-th failed attempt: 30 s doubling up to 1 h, with jitter
    (``rand`` in [0, 1) picks between half and all of it) so retries do not come in waves."""
    ceiling = min(MAX_RETRY, FIRST_RETRY * (1 << min(max(attempt - 1, 0), 20)))
    return ceiling * (0.5 + rand / 2)


# --- apprise ------------------------------------------------------------------------------------


def masked_url(url: str) -> str:
    """The apprise URL with its secrets masked by apprise itself, for display."""
    plugin = apprise.Apprise.instantiate(url)
    return _privacy_url(plugin) if plugin is not None else "<a URL apprise cannot use>"


def _privacy_url(plugin: NotifyBase) -> str:
    shown = str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
    # apprise masks passwords and the tokens its services define, not a generic webhook's path
    # (json://host/hooks/<token>, form://, xml://), where many services put the secret.
    parts = urlsplit(shown)
    path = "/".join("****" if _looks_like_token(unquote(part)) else part for part in parts.path.split("/"))
    return urlunsplit(parts._replace(path=path))


def _looks_like_token(part: str) -> bool:
    """A path segment that may be a credential: 8 characters or more with a digit, or 20 or more
    (an e-mail address, the recipient of a mail channel, is not one)."""
    if "@" in part:
        return False
    return (len(part) >= 8 and any(c.isdigit() for c in part)) or len(part) >= 20


def scrub(text: str, url: str) -> str:
    """``text`` with every secret of ``url`` (the parts apprise masks) replaced by ``****``."""
    plugin = apprise.Apprise.instantiate(url)
    shown = unquote(_privacy_url(plugin)) if plugin is not None else ""
    secrets = {url, unquote(url)} | {
        part for part in re.split(r"[/:@?&=#,;\s]+", unquote(url)) if len(part) >= 3 and part not in shown
    }
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "****").replace(quote(secret, safe=""), "****")
    return text


def apprise_send(url: str, message: Message, alert_id: str, change_class: ChangeClass | None) -> str | None:
    """Send ``message`` through apprise: HTML to email, Markdown that reads as the plain text to
    services that render Markdown (Slack, Discord, Teams..., or any with ``format=markdown``),
    plain text elsewhere. ``alert_id`` goes into an ``X-Alert-Id`` header where the service has
    headers (email, json, xml, form)."""
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return "apprise cannot use this URL"
    headers = getattr(plugin, "headers", None)
    if isinstance(headers, dict):
        headers["X-Alert-Id"] = alert_id
    email = isinstance(plugin, NotifyEmail)
    body, title, body_format = message.text, message.title, apprise.NotifyFormat.TEXT
    if email:
        body, body_format = message.html, apprise.NotifyFormat.HTML
    elif plugin.notify_format == apprise.NotifyFormat.MARKDOWN:
        # apprise hands plain text to such a service as it is, and the service would read the
        # page's words as formatting, links and mentions: escaped, they read as written.
        body, title, body_format = markdown_text(body), markdown_text(title), apprise.NotifyFormat.MARKDOWN
    notifier = apprise.Apprise()
    notifier.add(plugin)
    with applog.capture() as log_lines:
        sent = notifier.notify(
            body=body,
            title=title,
            notify_type=_NOTIFY_TYPES.get(change_class, apprise.NotifyType.INFO),
            body_format=body_format,
        )
    if sent:
        return None
    return scrub(_why(log_lines), url)


def _why(log_lines: Iterable[str]) -> str:
    """The useful lines of apprise's log of a failed send: warnings, errors, exceptions."""
    lines = [
        line.split(" ", 1)[1]
        for line in log_lines
        if line.startswith(("WARNING", "ERROR")) or ("Exception" in line or "Error" in line)
    ]
    return "; ".join(dict.fromkeys(lines)) or "apprise reported a failure without saying why"


# --- turning stored changes and health events into messages ------------------------------------


def view_of(details: ChangeDetails, alert_id: str, config: Config) -> AlertView:
    """What a message shows about one stored change."""
    after, before, change = details.after, details.before, details.change
    notice = _newest_notice(before, after)
    return AlertView(
        alert_id=alert_id,
        change_class=ChangeClass(change.change_class),
        country=after.country or _only(_source_countries(config, change.source_id)),
        source_id=change.source_id,
        publisher=config.publisher_of(change.source_id, details.kind),
        title=notice.title if notice else after.title,
        url=notice.url if notice and notice.url else after.url,
        reasons=change.reasons,
        diff=change.diff,
        level_before=change.level_before,
        level_after=change.level_after,
        label_before=before.level_label if before else None,
        label_after=after.level_label,
        updated_at=after.updated_at or after.published_at or (notice.published_at if notice else None),
        detected_at=change.detected_at,
    )


def health_view_of(details: HealthDetails, alert_id: str, config: Config) -> HealthView:
    """What a message shows about one recorded change of a source's health."""
    return HealthView(
        alert_id=alert_id,
        source_id=details.source_id,
        publisher=config.publisher_of(details.source_id, details.kind),
        state=Transition(details.state),
        reason=details.reason,
        at=details.at,
        unhealthy_since=details.unhealthy_since,
        last_success_at=details.last_success_at,
        last_error=details.last_error,
        url=details.url,
    )


def _newest_notice(before: Record | None, after: Record) -> Notice | None:
    """The newest carrier notice that is new or changed status: the one the alert is about."""
    old = {(n.id, n.status) for n in before.notices} if before else set()
    fresh = [n for n in after.notices if (n.id, n.status) not in old]
    oldest = datetime.min.replace(tzinfo=UTC)
    return max(fresh, key=lambda n: n.published_at or oldest, default=None)


def _source_countries(config: Config, source_id: str) -> tuple[str, ...]:
    return next((s.countries for s in config.sources if s.id == source_id), ())


def _only(values: Sequence[str]) -> str | None:
    return values[0] if len(values) == 1 else None


# --- the delivery loop --------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """The outcome of one message: to ``channel``, carrying ``alert_ids`` (several for a digest)."""

    channel: str
    alert_ids: tuple[int, ...]
    message_id: str
    title: str
    error: str | None  # None: sent
    gave_up: bool = False  # the alerts are marked failed: no attempts left

    @property
    def sent(self) -> bool:
        return self.error is None


class Deliverer:
    """Sends the outbox's due alerts for one configuration.

    ``send`` is :func:`apprise_send` unless replaced; ``now`` and ``rand`` are injectable for
    tests. Thread-safe; several processes may run one each against the same database.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        now: Clock = utcnow,
        send: Sender = apprise_send,
        rand: Callable[[], float] = random.random,
        lease: timedelta = LEASE,
        observe: Callable[[Delivery, Sequence[Alert]], None] | None = None,
    ) -> None:
        """``observe`` is told of every recorded delivery with its alerts (for metrics); an
        exception it raises is logged and never stops delivery."""
        self._config = config
        self._outbox = store.outbox
        self._channels = {c.name: c for c in config.alerts}
        self._now, self._send, self._rand, self._lease = now, send, rand, lease
        self._observe = observe

    def deliver_due(self, stop: threading.Event | None = None) -> list[Delivery]:
        """Send every alert due now, each channel in its own thread; returns the outcomes.

        Once ``stop`` is set, each channel finishes the message it is sending (a message cut
        off mid-send could arrive without being recorded, and be sent again), sends no more,
        and releases the alerts it took and did not send: due again at once, their attempt
        not counted. Set before the call, nothing is taken.

        Raises StorageError only when the database cannot be read or written."""
        if stop is not None and stop.is_set():
            return []
        alerts = self._outbox.claim(self._now(), lease=self._lease)
        if not alerts:
            return []
        details = self._outbox.details({a.change_id for a in alerts if a.change_id is not None})
        about = self._outbox.get({a.about_alert_id for a in alerts if a.about_alert_id is not None})
        groups = _groups(alerts)
        by_channel: dict[str, list[list[Alert]]] = {}
        for group in groups:
            by_channel.setdefault(group[0].channel, []).append(group)
        workers = max(1, min(MAX_PARALLEL_CHANNELS, len(by_channel)))
        with ThreadPoolExecutor(workers, thread_name_prefix="deliver") as pool:
            done = pool.map(lambda gs: self._deliver_channel(gs, details, about, stop), by_channel.values())
            return [delivery for channel in done for delivery in channel]

    def _deliver_channel(
        self,
        groups: Sequence[Sequence[Alert]],
        details: Mapping[int, ChangeDetails],
        about: Mapping[int, Alert],
        stop: threading.Event | None,
    ) -> list[Delivery]:
        """One channel's messages, in order, until ``stop`` is set (the rest are released).
        When one goes through, the channel works again: what it gave up on during an outage
        is queued again for the next pass."""
        results: list[Delivery] = []
        for index, group in enumerate(groups):
            if stop is not None and stop.is_set():
                self._release(groups[index:])
                break
            if (delivery := self._deliver(group, details, about)) is not None:
                results.append(delivery)
        if any(d.sent for d in results):
            name = results[0].channel
            if revived := self._outbox.retry_failed(self._now(), [name]):
                log.info("%s is reachable again: %d failed alerts queued again", name, revived)
        return results

    def _release(self, groups: Sequence[Sequence[Alert]]) -> None:
        """Give back the alerts of ``groups``, taken by this pass and not sent."""
        released = self._outbox.release([a for group in groups for a in group], self._now())
        log.info("stopping: %d alerts to %s not sent, due again at once", released, groups[0][0].channel)

    def _deliver(
        self, group: Sequence[Alert], details: Mapping[int, ChangeDetails], about: Mapping[int, Alert]
    ) -> Delivery | None:
        """Send one message and record its outcome; None when the alerts were taken over."""
        first = group[0]
        channel = self._channels.get(first.channel)
        message_id = _message_id(group)
        if channel is None:
            missing = f"no alert channel named {first.channel!r} in the configuration"
            return self._record(group, message_id, "", missing, None)
        try:
            message = self._message(group, details, about)
        except Exception as exc:  # a rendering bug must not stop the other alerts
            log.exception("cannot render alert %s", message_id)
            return self._record(group, message_id, "", f"cannot render: {exc}", channel)
        if not self._outbox.renew(group, self._now(), lease=self._lease):
            return None  # another worker took these over after the lease ran out
        try:
            error = self._send(channel.url, message, message_id, _highest(group))
        except Exception as exc:  # a service plugin's bug is a failed attempt, not a stopped loop
            # No traceback in the log: the exception's text may hold the URL's secrets.
            error = scrub(f"the sender raised {type(exc).__name__}: {exc}", channel.url)
        return self._record(group, message_id, message.title, error, channel)

    def _message(
        self,
        group: Sequence[Alert],
        details: Mapping[int, ChangeDetails],
        about: Mapping[int, Alert],
    ) -> Message:
        """One group's message: a failure report, a health alert, a change alert or a digest."""
        first = group[0]
        if first.purpose is Purpose.FAILURE:
            failed = about[first.about_alert_id] if first.about_alert_id is not None else None
            view = self._view(first, details, failed.key if failed else first.key)
            error = failed.last_error if failed and failed.last_error else "unknown error"
            return render_failure(view, failed.channel if failed else "?", error)
        if first.health_event_id is not None:
            return render_health(self._health_view(first.health_event_id, first.key))
        if first.batch is None:
            return render_alert(view_of(_change_of(first, details), first.key, self._config))
        views = [view_of(_change_of(a, details), a.key, self._config) for a in group]
        return render_digest(first.channel, _period_label(first.batch), views)

    def _view(
        self, alert: Alert, details: Mapping[int, ChangeDetails], shown_id: str
    ) -> AlertView | HealthView:
        """What ``alert`` is about, shown with the alert id ``shown_id``: its change, or the
        health event of a health alert (or of a failure report about one)."""
        if alert.health_event_id is None:
            return view_of(_change_of(alert, details), shown_id, self._config)
        return self._health_view(alert.health_event_id, shown_id)

    def _health_view(self, event_id: int, shown_id: str) -> HealthView:
        """A health event, read when its message is rendered: health alerts are rare."""
        events = self._outbox.health_details([event_id])
        return health_view_of(events[event_id], shown_id, self._config)

    def _record(
        self,
        group: Sequence[Alert],
        message_id: str,
        title: str,
        error: str | None,
        channel: AlertChannel | None,
    ) -> Delivery:
        now, name, ids = self._now(), group[0].channel, tuple(a.id for a in group)
        if error is None:
            self._outbox.mark_sent(ids, now)
            log.info("alert %s sent to %s", message_id, name)
            return self._observed(Delivery(name, ids, message_id, title, None), group)
        attempts = max(a.attempts for a in group)
        gave_up = channel is None or attempts >= channel.max_attempts
        retry_at = None if gave_up else now + backoff(attempts, self._rand())
        report_to = failure_recipients(self._config.alerts, name) if gave_up else []
        self._outbox.mark_failed_attempt(ids, now, error, retry_at, report_to)
        if retry_at is None:
            log.error(
                "alert %s to %s failed after %d attempts, giving up: %s", message_id, name, attempts, error
            )
        else:
            log.warning(
                "alert %s to %s failed (attempt %d), next try at %s: %s",
                message_id,
                name,
                attempts,
                f"{retry_at:%H:%M:%S}",
                error,
            )
        return self._observed(Delivery(name, ids, message_id, title, error, gave_up), group)

    def _observed(self, delivery: Delivery, group: Sequence[Alert]) -> Delivery:
        if self._observe is not None:
            try:
                self._observe(delivery, group)
            except Exception:  # metrics must never cost an alert
                log.exception("cannot observe delivery %s", delivery.message_id)
        return delivery


def send_test(
    config: Config, names: Iterable[str] = (), *, now: Clock = utcnow, send: Sender = apprise_send
) -> list[Delivery]:
    """Send a test message to the named channels (all when none); nothing is stored."""
    channels = {c.name: c for c in config.alerts}
    results = []
    for name in list(names) or list(channels):
        message = render_test(name, now())
        error = send(channels[name].url, message, f"test-{name}", None)
        results.append(Delivery(name, (), f"test-{name}", message.title, error))
    return results


def _groups(alerts: Sequence[Alert]) -> list[list[Alert]]:
    """One message per alert, except digest alerts: one per (channel, period)."""
    groups: dict[tuple[str, str], list[Alert]] = {}
    for alert in alerts:
        key = (alert.channel, alert.batch) if alert.batch is not None else (alert.channel, alert.key)
        groups.setdefault(key, []).append(alert)
    return list(groups.values())


def _message_id(group: Sequence[Alert]) -> str:
    """The stable id of a message: the alert's key, or for a digest one derived from its alerts'."""
    if len(group) == 1 and group[0].batch is None:
        return group[0].key
    digest = hashlib.sha256("\n".join(sorted(a.key for a in group)).encode()).hexdigest()[:16]
    return f"digest-{group[0].channel}-{digest}"


def _change_of(alert: Alert, details: Mapping[int, ChangeDetails]) -> ChangeDetails:
    if alert.change_id is None:
        raise ValueError(f"alert {alert.key} is about no change")
    return details[alert.change_id]


def _highest(group: Sequence[Alert]) -> ChangeClass | None:
    """The most severe class in ``group``; None for health alerts, which have none."""
    classes = {a.change_class for a in group}
    return next((c for c in SEVERITY if c in classes), None)


def _period_label(batch: str) -> str:
    """``daily:2025-11-07T07:00Z`` -> ``24 hours to 7 Nov 2025 07:00 UTC``."""
    period, _, end = batch.partition(":")
    at = datetime.strptime(end, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    span = "hour" if period == "hourly" else "24 hours"
    return f"{span} to {format_utc(at)}"
