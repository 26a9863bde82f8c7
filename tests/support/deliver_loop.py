"""A delivery worker to be killed: for crash tests of the outbox.

::

    python tests/support/deliver_loop.py DATABASE_URL CONFIG_FILE

The process imports everything once, prints ``ready``, then obeys commands read from stdin, one
per line, answering each on stdout:

``run OFFSET``
    fork a worker and answer its pid. The worker opens the store and runs
    ``Deliverer(config, store, lease=1 s).deliver_due()`` in a loop until it is killed; its clock
    runs ``OFFSET`` seconds ahead of the real one.
``reap PID``
    wait for that worker to end (the caller kills it) and answer ``reaped PID SIGNAL EXIT``:
    the signal that ended it (0: none) and its exit code.

Forking an already initialised interpreter makes every start take milliseconds instead of the
second or so that importing apprise and SQLAlchemy takes, so a test can kill many workers. The
clock offset stands in for the time a restart takes: a caller that starts each worker at least a
lease ahead of the previous one makes whatever the killed worker held due again at once.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from monitor.alerts.delivery import Deliverer
from monitor.config import Config, load
from monitor.errors import StorageError
from monitor.store import Store

LEASE = timedelta(seconds=1)
PAUSE = 0.005  # seconds between two passes over the outbox


def work(url: str, config: Config, offset: timedelta, launcher: int) -> None:
    """Deliver due alerts until killed; stop by itself should the launcher be gone."""
    store = Store.open(url, migrate=False)
    deliverer = Deliverer(config, store, now=lambda: datetime.now(UTC) + offset, lease=LEASE)
    while os.getppid() == launcher:
        try:
            deliverer.deliver_due()
        except StorageError as exc:  # as ``monitor run`` does: log it and try again
            print(f"worker {os.getpid()}: {exc}", file=sys.stderr, flush=True)
        time.sleep(PAUSE)


def fork_worker(url: str, config: Config, offset: timedelta) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    launcher = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        work(url, config, offset, launcher)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)  # never return into the command loop of the parent


def main(argv: list[str]) -> int:
    url, config_file = argv
    config = load(Path(config_file), environ={})
    sa.make_url(url).get_dialect().import_dbapi()  # the driver too, once for every worker
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "run":
            print(fork_worker(url, config, timedelta(seconds=float(argument))), flush=True)
        elif command == "reap":
            pid, status = os.waitpid(int(argument), 0)
            signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
            print(f"reaped {pid} {signal} {code}", flush=True)
        else:
            print(f"unknown command {line.strip()!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
