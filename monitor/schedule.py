"""Pure timing of checks: when a source is due again after a check, and how much to spread it.

A source that works is checked every ``interval``. One that fails backs off exponentially: the
n-th failure in a row waits ``interval × 2^(n-1)``, at most ``max_backoff`` (never less than
the interval itself); the first success brings it back to its interval. A publisher's
``Retry-After`` is honoured: the next check never comes sooner than it asks (at most a day).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

# Spread the checks of sources sharing one interval, so a host does not see them all at once.
MAX_JITTER = timedelta(seconds=30)
# A Retry-After beyond this is read as a mistake of the publisher's, not as a reason to stop.
MAX_RETRY_AFTER = timedelta(days=1)


def jitter_for(interval: timedelta) -> timedelta:
    """The largest random delay added to a check's due time: a tenth of the interval, at most 30 s."""
    return min(MAX_JITTER, interval / 10)


def jittered(due: datetime, interval: timedelta, rand: Callable[[], float] = random.random) -> datetime:
    """``due`` plus a random part of :func:`jitter_for` (``rand`` in [0, 1))."""
    return due + jitter_for(interval) * rand()


def backoff_delay(interval: timedelta, failures: int, max_backoff: timedelta) -> timedelta:
    """The wait before the next check after ``failures`` failed checks in a row (0: the interval)."""
    if failures <= 1:
        return interval
    ceiling = max(interval, max_backoff)
    # Past 2^30 the product would be absurdly large; the ceiling applies long before.
    return min(ceiling, interval * (1 << min(failures - 1, 30)))


def next_check(
    *,
    started: datetime,
    finished: datetime,
    interval: timedelta,
    failures: int,
    max_backoff: timedelta,
    retry_after: float | None = None,
) -> datetime:
    """When a source checked at ``started`` (done at ``finished``) is due again.

    Counted from the start, so a check's own duration does not drift the cadence; a
    ``retry_after`` (seconds) is counted from the answer that asked for it."""
    due = started + backoff_delay(interval, failures, max_backoff)
    if retry_after is not None and retry_after > 0:
        asked = finished + timedelta(seconds=min(retry_after, MAX_RETRY_AFTER.total_seconds()))
        due = max(due, asked)
    return due
