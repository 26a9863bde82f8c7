"""The database as the service sees it: answering, or unavailable since when and why.

Every database failure of the service's jobs (taking sources, recording checks, the heartbeat,
delivery) goes through one :class:`DatabaseOutage`. A failure saying the database cannot be
used right now (see :func:`monitor.database.unavailable`: server down, connection lost, SQLite
file locked past the busy timeout) starts an outage: one warning is logged, the failures after
it only at debug level, and the first success ends it with one line saying how long it
lasted. Meanwhile ``/healthz`` answers 503 with the reason. Any other database error is logged
as an error each time, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from monitor.database import unavailable
from monitor.errors import StorageError

log = logging.getLogger(__name__)


class DatabaseOutage:
    """Thread-safe (delivery reports from its own threads). ``clock``: monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._reason: str | None = None
        self._failures = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def problem(self) -> str | None:
        """Why the database is unavailable (for ``/healthz``), or None while it answers."""
        with self._lock:
            if self._since is None:
                return None
            lasted = self._clock() - self._since
            return f"the database is unavailable (for {lasted:.0f} s): {self._reason}"

    def failed(self, action: str, exc: StorageError) -> None:
        """``action`` (what could not be done, for the log) failed with ``exc``."""
        if not unavailable(exc):
            log.error("%s: %s", action, exc)
            return
        with self._lock:
            self._failures += 1
            if self._since is not None:
                log.debug("%s: the database is still unavailable: %s", action, exc)
                return
            self._since, self._reason = self._clock(), str(exc)
        log.warning(
            "the database is unavailable (%s): %s; the service waits for it: checks not recorded are "
            "due again and alerts stay in the outbox until it answers",
            action,
            exc,
        )

    def answered(self) -> None:
        """A database call succeeded: an outage in progress is over."""
        if self._since is None:  # the usual case, without taking the lock
            return
        with self._lock:
            if self._since is None:
                return
            lasted, failures = self._clock() - self._since, self._failures
            self._since, self._reason, self._failures = None, None, 0
        log.warning(
            "the database answers again after %.1f s (%d operations failed meanwhile); the service resumes",
            lasted,
            failures,
        )
