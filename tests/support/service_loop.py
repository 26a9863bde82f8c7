"""A launcher of ``monitor run`` processes to be killed: for crash tests of the service.

::

    python tests/support/service_loop.py LOG_DIR

The process imports the monitor once, prints ``ready``, then obeys commands read from stdin, one
per line, answering each on stdout:

``run ARG...``
    fork a process that runs the ``monitor`` command line with those arguments (e.g.
    ``--config monitor.yaml run``), exactly as the ``monitor`` entry point does, its stdout and
    stderr appended to ``LOG_DIR/PID.log``; answer its pid.
``reap PID``
    wait for that process to end (the caller kills it) and answer ``reaped PID SIGNAL EXIT``:
    the signal that ended it (0: none) and its exit code.

Forking an interpreter that has imported everything makes a start take milliseconds instead of
the second or two a fresh ``monitor`` process takes, so a test can kill the service many times.
"""

from __future__ import annotations

import os
import shlex
import sys
import traceback
from pathlib import Path

import apprise
import sqlalchemy.dialects.postgresql.psycopg
import sqlalchemy.dialects.sqlite.pysqlite

from monitor.cli import cli


def fork_service(log_dir: Path, args: list[str]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        log = os.open(log_dir / f"{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # the launcher's commands are not the service's
        cli.main(args, prog_name="monitor")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # never return into the command loop of the launcher


def main(argv: list[str]) -> int:
    [log_dir] = argv
    # Imported for every child once, here: the drivers are loaded on first use otherwise.
    sqlalchemy.dialects.postgresql.psycopg.dialect.import_dbapi()  # type: ignore[no-untyped-call]
    sqlalchemy.dialects.sqlite.pysqlite.dialect.import_dbapi()
    apprise.Apprise.instantiate("json://127.0.0.1:1/")
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "run":
            print(fork_service(Path(log_dir), shlex.split(argument)), flush=True)
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
