"""``monitor alerts``: test the channels, look at the outbox, retry what failed.

Channel URLs are only ever shown through apprise's privacy masking; stored errors were scrubbed
of secrets before they were stored.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.table import Column, Table

from monitor.alerts.delivery import Deliverer, Delivery, masked_url, send_test
from monitor.alerts.outbox import Alert, AlertStatus, Purpose
from monitor.cliutil import Context, MonitorGroup, iso, json_option, table_console, when
from monitor.config import Config
from monitor.display import printable
from monitor.errors import ConfigError
from monitor.health import duration_text
from monitor.store import Store


@click.group(name="alerts", cls=MonitorGroup)
def alerts_group() -> None:
    """Alert channels and the outbox of alerts to deliver."""


@alerts_group.command(name="test")
@click.argument("channels", nargs=-1, metavar="[CHANNEL]...")
@click.pass_obj
def alerts_test(obj: Context, channels: tuple[str, ...]) -> None:
    """Send a test message to the named channels (all when none) and show the outcome.

    Nothing is stored. Exit code 1 when any channel failed."""
    config = obj.config()
    _check_channels(config, channels)
    if not config.alerts:
        raise ConfigError(f"{config.path}: no alert channels configured (see `alerts:` in README)")
    urls = {c.name: c.url for c in config.alerts}
    results = send_test(config, channels)
    for result in results:
        outcome = "sent" if result.sent else f"FAILED: {result.error}"
        click.echo(f"{result.channel} ({masked_url(urls[result.channel])}): {outcome}")
    if not all(result.sent for result in results):
        sys.exit(1)


@alerts_group.command(name="list")
@click.option(
    "--status", type=click.Choice([s.value for s in AlertStatus]), help="Only alerts with this status."
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Newest N alerts.")
@json_option
@click.pass_obj
def alerts_list(obj: Context, status: str | None, limit: int, as_json: bool) -> None:
    """Show the outbox, newest first: each alert's channel, change or source health, status,
    attempts, and how long it took from publication to detection and from detection to sending."""
    config = obj.config()
    store = obj.open_store(config)
    try:
        alerts = store.outbox.alerts(AlertStatus(status) if status else None, limit=limit)
        counts = store.outbox.counts()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([_alert_json(a) for a in alerts], indent=2, ensure_ascii=False))
        return
    table = Table(
        "id",
        "channel",
        "status",
        "tries",
        "class",
        "about",
        "queued",
        "next / sent",
        "published→detected",
        "detected→sent",
        Column("last error", overflow="fold"),  # an error is read whole, not cut at a long word
    )
    for a in alerts:
        published, sent = _latencies(a)
        table.add_row(
            str(a.id),
            a.channel,
            f"{a.status.value} (failure report)" if a.purpose is Purpose.FAILURE else a.status.value,
            str(a.attempts),
            a.change_class.value if a.change_class else f"source {a.health_state}",
            f"{a.source_id} {a.record_key}" if a.record_key is not None else f"{a.source_id} (health)",
            when(a.created_at),
            when(a.sent_at)
            if a.sent_at
            else when(a.next_attempt_at)
            if a.status is AlertStatus.PENDING
            else "-",
            _span(published),
            _span(sent),
            printable(a.last_error or ""),
        )
    table_console(160).print(table)
    click.echo(", ".join(f"{n} {s}" for s, n in counts.items()))


@alerts_group.command(name="retry")
@click.argument("channels", nargs=-1, metavar="[CHANNEL]...")
@click.pass_obj
def alerts_retry(obj: Context, channels: tuple[str, ...]) -> None:
    """Make the failed alerts (of the named channels, or all) pending again and deliver now.

    Exit code 1 when a delivery failed again (it stays pending and is retried with backoff)."""
    config = obj.config()
    _check_channels(config, channels)
    store = obj.open_store(config)
    try:
        count = store.outbox.retry_failed(datetime.now(UTC), channels)
        click.echo(f"{count} failed alert{'s' if count != 1 else ''} queued again")
        results = deliver_now(config, store)
    finally:
        store.close()
    if not all(result.sent for result in results):
        sys.exit(1)


def deliver_now(config: Config, store: Store, *, quiet: bool = False) -> list[Delivery]:
    """Deliver the alerts due now, once, and print one line per message (to stderr when
    ``quiet``, so JSON output stays clean)."""
    results = Deliverer(config, store).deliver_due()
    for result in results:
        if result.sent:
            click.echo(f"alert {result.message_id} sent to {result.channel}: {result.title}", err=quiet)
        else:
            later = "marked failed" if result.gave_up else "will be retried"
            line = f"alert {result.message_id} to {result.channel} failed ({later}): {result.error}"
            click.echo(line, err=quiet)
    return results


def _check_channels(config: Config, names: Sequence[str]) -> None:
    known = [c.name for c in config.alerts]
    for name in names:
        if name not in known:
            raise ConfigError(
                f"{config.path}: no alert channel {name!r}; configured: {', '.join(known) or 'none'}"
            )


def _latencies(alert: Alert) -> tuple[timedelta | None, timedelta | None]:
    """(the publisher's own time -> our detection, detection -> sent); None when not known."""
    published = alert.detected_at - alert.published_at if alert.published_at else None
    sent = alert.sent_at - alert.detected_at if alert.sent_at else None
    return published, sent


def _span(span: timedelta | None) -> str:
    if span is None:
        return "-"
    # A publisher's clock (or a date without a time) can put publication after our detection.
    return f"-{duration_text(-span)}" if span < timedelta(0) else duration_text(span)


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else round(span.total_seconds(), 3)


def _alert_json(alert: Alert) -> dict[str, Any]:
    published, sent = _latencies(alert)
    return {
        "id": alert.id,
        "key": alert.key,
        "channel": alert.channel,
        "purpose": alert.purpose.value,
        "status": alert.status.value,
        "attempts": alert.attempts,
        "change_id": alert.change_id,
        "class": alert.change_class.value if alert.change_class else None,
        "health_event_id": alert.health_event_id,
        "health_state": alert.health_state,
        "source_id": alert.source_id,
        "record_key": alert.record_key,
        "about_alert_id": alert.about_alert_id,
        "digest": alert.batch,
        "created_at": iso(alert.created_at),
        "next_attempt_at": iso(alert.next_attempt_at) if alert.status is AlertStatus.PENDING else None,
        "sent_at": iso(alert.sent_at),
        "last_error": alert.last_error,
        "published_at": iso(alert.published_at),
        "detected_at": iso(alert.detected_at),
        "published_to_detected_seconds": _seconds(published),
        "detected_to_sent_seconds": _seconds(sent),
    }
