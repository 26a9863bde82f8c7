"""Logging for the command line and the service: one handler on stderr, as text or JSON lines.

A JSON line carries ``level``, ``logger``, ``message``, ``timestamp`` (ISO 8601, UTC), every
field passed with ``extra=`` (the per-check line passes source, outcome, duration_ms,
http_status and changes) and, when an exception is logged, ``exc_info`` as the formatted
traceback::

    {"level": "INFO", "logger": "monitor.scheduler", "message": "...", "source": "uk-mali",
     "outcome": "unchanged", "duration_ms": 412, "timestamp": "2026-03-01T12:00:00.123000+00:00"}
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries whose INFO lines are one per job run or request: only shown with --verbose.
NOISY = ("apscheduler", "httpx", "httpcore", "alembic")


class _Handler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure` installs, recognised (and replaced) when it runs again."""


def configure(verbose: bool, fmt: Literal["text", "json"]) -> None:
    """Send every log record at INFO and above (DEBUG with ``verbose``) to stderr in ``fmt``.

    Replaces the handler an earlier call installed, so calling it again changes the format
    rather than doubling every line; handlers installed by others are left alone. Raises
    ``ValueError`` for an unknown ``fmt``."""
    handler = _Handler(sys.stderr)
    handler.setFormatter(_formatter(fmt))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "text":
        return logging.Formatter(TEXT_FORMAT)
    if fmt == "json":
        return JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
    raise ValueError(f"unknown log format {fmt!r}; allowed: text, json")
