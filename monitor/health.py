"""Pure: whether a source works, judged from one check or from the time since its last success.

A source is ``ok`` or ``unhealthy``. It becomes unhealthy after ``broken_after`` failed checks
in a row, at once on a payload that cannot be read or a refusal by the publisher, or when no
check has succeeded for more than three times its interval; any successful check makes it ok
again. Only a change of state is news: :mod:`monitor.healthstore` records it and alerts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from monitor.models import Outcome

# How many intervals may pass without a successful check before a source counts as unhealthy:
# one missed check is ordinary (a slow answer, a restart), three in a row are not.
STALE_AFTER_INTERVALS = 3


class Health(StrEnum):
    OK = "ok"
    UNHEALTHY = "unhealthy"


class Transition(StrEnum):
    """A change of state as ``health_events`` records it."""

    UNHEALTHY = "unhealthy"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class Verdict:
    """What a check or the clock says about a source; ``reason`` says why it is unhealthy."""

    health: Health
    reason: str | None = None


def after_check(outcome: Outcome, failures: int, broken_after: int, error: str | None) -> Verdict | None:
    """The verdict of one check: ``failures`` counts the failed checks in a row, this one included.

    A successful outcome is ``ok``. A parse failure or a block is ``unhealthy`` at once: the
    next check will most likely meet the same page. A failed fetch is ``unhealthy`` from the
    ``broken_after``-th in a row on; before that, None: one failure is not yet a state change.
    """
    if outcome.ok:
        return Verdict(Health.OK)
    last = error or "no error text"
    if outcome is Outcome.PARSE_FAILED:
        return Verdict(Health.UNHEALTHY, f"the payload could not be read: {last}")
    if outcome is Outcome.BLOCKED:
        return Verdict(Health.UNHEALTHY, f"the publisher refused the request: {last}")
    if failures >= broken_after:
        return Verdict(Health.UNHEALTHY, f"{failures} checks in a row failed; last: {last}")
    return None


def stale_before(interval: timedelta, now: datetime) -> datetime:
    """The time a last success must be later than (or equal to) for the source to be fresh."""
    return now - STALE_AFTER_INTERVALS * interval


def staleness(
    last_success_at: datetime | None, watched_since: datetime, interval: timedelta, now: datetime
) -> Verdict | None:
    """``unhealthy`` when no check succeeded for more than three ``interval``s, else None.

    Measured from ``last_success_at``, or from ``watched_since`` (when the source was added, or
    when the service started) when that is later or there was never a success. Exactly three
    intervals is not yet stale.
    """
    since = max(last_success_at, watched_since) if last_success_at is not None else watched_since
    if since >= stale_before(interval, now):
        return None
    limit = f"more than {STALE_AFTER_INTERVALS}× its interval of {duration_text(interval)}"
    never = "" if last_success_at is not None else "; it never had one"
    return Verdict(Health.UNHEALTHY, f"no successful check for {duration_text(now - since)} ({limit}){never}")


def duration_text(span: timedelta) -> str:
    """A span as a person says it, to the two largest units: "45 s", "12 min", "2 h 10 min",
    "3 d 4 h". Negative spans read as zero; seconds are shown only under a minute."""
    seconds = max(0, int(span.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    units = (("d", 86400), ("h", 3600), ("min", 60))
    parts: list[tuple[int, str]] = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append((count, name))
    shown = parts[:2]
    return " ".join(f"{count} {name}" for count, name in shown if count)
