"""The exception tree of the monitor.

::

    MonitorError                 anything the CLI turns into one line and a non-zero exit code
    ├── ConfigError              a configuration file is missing, unreadable or invalid (exit 2)
    ├── FetchError               a source could not be fetched (network, HTTP status, size cap, ...)
    │   └── BlockedError         the publisher answered with a block or bot-challenge page
    ├── ParseError               a payload could not be turned into normalised records
    └── StorageError             the database could not be opened, migrated or written

Every error that is about one source carries its id and URL, so a log line or a CLI message
always says which source it concerns.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base class. ``exit_code`` is what the CLI returns for it."""

    exit_code = 1

    def __init__(self, message: str, *, source_id: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source_id = source_id
        self.url = url

    def __str__(self) -> str:
        where = [part for part in (self.source_id, self.url) if part]
        return f"{' '.join(where)}: {self.message}" if where else self.message


class ConfigError(MonitorError):
    """Invalid configuration; the message names the file, the entry, the key and what is allowed."""

    exit_code = 2


class FetchError(MonitorError):
    """A fetch failed. ``status`` is the HTTP status when there was a response."""

    def __init__(
        self,
        message: str,
        *,
        source_id: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, source_id=source_id, url=url)
        self.status = status


class BlockedError(FetchError):
    """The publisher refused us (403 / bot challenge); never parsed as content."""


class ParseError(MonitorError):
    """A payload did not have the structure its source kind expects."""


class StorageError(MonitorError):
    """The database could not be used."""
