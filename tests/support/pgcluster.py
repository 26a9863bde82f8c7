"""A private PostgreSQL cluster that a test may stop and start: ``initdb`` + ``pg_ctl``.

::

    def test_x(pg_cluster: PgCluster) -> None:
        store = Store.open(pg_cluster.url)
        pg_cluster.stop("fast")
        pg_cluster.start()

The cluster lives in a fresh directory under the system's temporary directory, listens on a
free port of 127.0.0.1 (and a unix socket in that directory) with trust authentication, and is
removed afterwards. ``initdb`` refuses to run as root: as root, the PostgreSQL commands run as
the ``postgres`` user. When the cluster cannot be created or started (no PostgreSQL binaries, no
``postgres`` user), the test is skipped with the reason, except with ``CI=true``: then it fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from tests.support.ports import free_port

StopMode = Literal["smart", "fast", "immediate"]


class PgCluster:
    """One cluster; :meth:`create` makes it, :meth:`start` / :meth:`stop` / :meth:`restart` run it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def create(self) -> None:
        self.root.chmod(0o755)
        self.data.mkdir()
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            os.chown(self.data, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: StopMode = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: StopMode = "fast") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        try:
            done = subprocess.run(
                self._command("pg_ctl", "-D", str(self.data), "status"), capture_output=True, check=False
            )
        except OSError:
            return False
        return done.returncode == 0

    def log(self) -> str:
        path = self.root / "log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def _run(self, *args: str) -> None:
        done = subprocess.run(self._command(*args), capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:1])} failed ({done.returncode}): {done.stderr or done.stdout}"
            )

    def _command(self, *args: str) -> list[str]:
        binary = shutil.which(args[0]) or args[0]
        command = [binary, *args[1:]]
        return ["runuser", "-u", "postgres", "--", *command] if self._as_postgres else command


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """A started private cluster, stopped and removed after the test."""
    root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
    cluster = PgCluster(root)
    try:
        try:
            cluster.create()
            cluster.start()
        except (OSError, KeyError, RuntimeError, subprocess.TimeoutExpired) as exc:
            reason = f"cannot start a private PostgreSQL cluster: {exc}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        yield cluster
    finally:
        if cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
