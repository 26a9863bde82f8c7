"""One service process per SQLite database.

SQLite serialises writers and has no row locks, so sharing the work between several
``monitor run`` processes is supported on PostgreSQL only. On SQLite, ``monitor run`` holds an
exclusive lock on ``<database>.lock`` for its whole life; a second one is refused at once with a
message naming the first. The operating system drops the lock when the process ends, however it
ends, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from monitor.errors import MonitorError


class AlreadyRunningError(MonitorError):
    """Another ``monitor run`` process is using the same SQLite database."""


def lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite database file; None for PostgreSQL and in-memory SQLite."""
    url = sa.make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None  # a URI filename: in-memory or shared-cache, not a plain file to lock beside
    return Path(url.database).with_name(Path(url.database).name + ".lock")


@contextmanager
def single_process(database_url: str) -> Iterator[None]:
    """Hold the database's service lock for the duration of the block (nothing for PostgreSQL).

    Raises :class:`AlreadyRunningError` when another process holds it."""
    path = lock_path(database_url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise AlreadyRunningError(
                f"{holder} is already running the service on {url_path(database_url)}; on SQLite one "
                "`monitor run` process is supported: stop that one first, or use PostgreSQL "
                "(database: postgresql+psycopg://...) to share the work between several workers"
            ) from None
        os.ftruncate(fd, 0)
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        os.pwrite(
            fd, f"monitor run (pid {os.getpid()} on {socket.gethostname()}, since {started})".encode(), 0
        )
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def url_path(database_url: str) -> str:
    return str(sa.make_url(database_url).database)
