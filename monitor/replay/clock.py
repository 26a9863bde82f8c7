"""The replay's simulated time: it stands still while the service works, and moves on only when
told to (see :mod:`monitor.service.timebase`)."""

from __future__ import annotations

from datetime import datetime

from monitor.pipeline import utcnow


class SteppedClock:
    """Simulated time starting at ``start``; :meth:`advance_to` moves it forward."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated time must be timezone-aware")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def wall(self, moment: datetime) -> datetime | None:
        """Now, for a moment already reached; None (not yet known) for a later one."""
        return utcnow() if moment <= self._now else None

    def advance_to(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError(f"simulated time cannot go back from {self._now} to {moment}")
        self._now = moment
