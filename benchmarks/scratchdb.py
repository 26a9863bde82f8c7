"""Fresh databases for benchmark runs: a SQLite file in a folder, or a new PostgreSQL database.

::

    with scratch_database(None, folder, "run0") as url:           # sqlite:///FOLDER/run0.db
        ...
    with scratch_database("postgresql+psycopg://postgres@127.0.0.1:5432/test", folder, "run0") as url:
        ...  # postgresql+psycopg://postgres@127.0.0.1:5432/bench_<pid>_run0, dropped afterwards
    database_size(url)                                            # bytes

A PostgreSQL URL names a server and a database to connect to for creating and dropping the
scratch one (the URL's own database is left alone); the server must let that user create
databases. Every run starts cold: an empty database, which the monitor migrates on its first
connection.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

NAME_PREFIX = "bench"


def is_postgresql(url: str) -> bool:
    """Whether ``url`` is a PostgreSQL SQLAlchemy URL (``postgresql://`` or ``postgresql+driver://``)."""
    return make_url(url).get_backend_name() == "postgresql"


def _libpq(url: str, database: str | None = None) -> str:
    """The SQLAlchemy URL as a libpq connection URI, for psycopg; ``database`` replaces its database."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    elif not parsed.database:
        parsed = parsed.set(database="postgres")
    return parsed.render_as_string(hide_password=False)


def scratch_name(label: str) -> str:
    """The scratch database's name for ``label``: ``bench_<pid>_<label>``, lower case, [a-z0-9_]."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", label.lower())
    return f"{NAME_PREFIX}_{os.getpid()}_{cleaned}"[:63]


@contextlib.contextmanager
def scratch_database(base: str | None, folder: Path, label: str) -> Iterator[str]:
    """A database URL for one run, empty at the start.

    Without ``base``: a SQLite file ``label.db`` in ``folder`` (which must not hold one yet).
    With a PostgreSQL ``base``: a new database on that server, created with ``base``'s user and
    dropped (``WITH (FORCE)``) when the block ends, whatever happens in it. Any other URL is a
    ValueError: a SQLite file named by the caller would not start empty at each run.
    """
    if base is None:
        path = Path(folder) / f"{label}.db"
        if path.exists():
            raise ValueError(f"{path} exists already; a scratch database starts empty")
        yield f"sqlite:///{path}"
        return
    if not is_postgresql(base):
        raise ValueError(
            "the database must be a PostgreSQL URL (postgresql+psycopg://USER@HOST:PORT/DB); "
            "without one a SQLite file in a temporary folder is used"
        )
    name = scratch_name(label)
    with psycopg.connect(_libpq(base), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(base), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_size(url: str) -> int:
    """The database's size in bytes: a SQLite file with its write-ahead log, or PostgreSQL's
    ``pg_database_size`` (every table, index and TOAST table, including pages not yet reused)."""
    if is_postgresql(url):
        with psycopg.connect(_libpq(url), autocommit=True) as connection:
            row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row is not None else 0
    database = make_url(url).database
    if not database:
        return 0
    path = Path(database)
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
