"""Where the service's time comes from.

The service reads the time (``now``) and asks its scheduler, which runs on the real clock, to
wake it at moments of that time (``wall``). Normally both are the real clock. A replay runs the
same service on a :class:`~monitor.replay.clock.SteppedClock`, a simulated time that stands
still while the service works and moves on only when everything due has been done: moments
ahead of it have no real time yet (``wall`` returns None) until the clock reaches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.pipeline import Clock, utcnow


class Timebase(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def wall(self, moment: datetime) -> datetime | None:
        """When, on the real clock, the scheduler should wake for ``moment``; None when the
        moment has no real time yet (a simulated clock that has not reached it)."""
        ...


@dataclass(frozen=True)
class RealTime:
    """The real clock (``clock`` replaceable in tests): a moment wakes at that moment."""

    clock: Clock = utcnow

    def now(self) -> datetime:
        return self.clock()

    def wall(self, moment: datetime) -> datetime:
        return moment


REAL_TIME = RealTime()
