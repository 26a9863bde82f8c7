"""apprise's own log, kept away from ours: its services log URLs, tokens and headers.

Once :func:`isolate` has run, the ``apprise`` logger no longer reaches the application's
handlers. What it logs inside :func:`capture` is collected for the calling thread only (several
channels are sent from parallel threads), so one channel's error never carries another's log
lines; everything else it logs is dropped. The caller scrubs what it collected before use.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


class _PerThread(logging.Handler):
    """Appends each record to the buffer of the thread that logged it, if it has one."""

    def emit(self, record: logging.LogRecord) -> None:
        lines: list[str] | None = getattr(_local, "lines", None)
        if lines is not None:
            lines.append(f"{record.levelname} {record.getMessage()}")


@functools.cache
def isolate() -> None:
    """Route the ``apprise`` logger to the per-thread buffers only (idempotent)."""
    logger = logging.getLogger("apprise")
    logger.handlers[:] = [_PerThread(logging.DEBUG)]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


@contextmanager
def capture() -> Iterator[list[str]]:
    """Collect what apprise logs in this thread inside the block, as ``LEVEL message`` lines."""
    isolate()
    lines: list[str] = []
    _local.lines = lines
    try:
        yield lines
    finally:
        _local.lines = None
