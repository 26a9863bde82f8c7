"""Real ``monitor run`` processes for crash and outage tests, started in milliseconds.

:class:`ServiceLauncher` drives tests/support/service_loop.py: each service is a fresh process
forked from a launcher that has imported everything once, running the ``monitor`` command line
itself; its output goes to ``LOG_DIR/PID.log``.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

SCRIPT = Path(__file__).resolve().parent / "service_loop.py"


class ServiceLauncher:
    """The launcher process and the commands it takes; ``close()`` kills what is left."""

    def __init__(self, log_dir: Path, errors: IO[str]) -> None:
        self.log_dir = log_dir
        self._errors = errors
        self._alive: set[int] = set()  # started and not yet reaped
        self._process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(log_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            bufsize=1,
        )
        assert self._answer() == "ready", self.errors()

    def start(self, *args: str) -> int:
        """Start ``monitor ARGS...``; returns its pid."""
        pid = int(self._command("run " + shlex.join(args)))
        self._alive.add(pid)
        return pid

    def kill(self, pid: int, signum: int = signal.SIGKILL) -> str:
        """Send ``signum`` to the service, wait for it to end, return ``reaped PID SIGNAL EXIT``."""
        # The service is the launcher's child, not reaped yet: its pid cannot have been reused.
        os.kill(pid, signum)
        answer = self._command(f"reap {pid}")
        self._alive.discard(pid)
        return answer

    def alive(self, pid: int) -> bool:
        """Whether the service still runs (a zombie, ended and not reaped, does not)."""
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"

    def log(self, pid: int) -> str:
        path = self.log_dir / f"{pid}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def errors(self) -> str:
        self._errors.flush()
        return Path(self._errors.name).read_text(encoding="utf-8")[-3000:]

    def close(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            for pid in list(self._alive):
                self.kill(pid)
            self._process.stdin.close()
            self._process.wait(timeout=10)
        finally:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            self._process.stdout.close()

    def _command(self, line: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._answer()

    def _answer(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        assert line, f"the launcher ended: {self.errors()}"
        return line.strip()


@contextmanager
def service_launcher(folder: Path) -> Iterator[ServiceLauncher]:
    """A launcher whose services log to ``folder/logs``; closed (its services killed) at the end."""
    (folder / "logs").mkdir()
    with (folder / "launcher.log").open("w+", encoding="utf-8") as errors:
        launcher = ServiceLauncher(folder / "logs", errors)
        try:
            yield launcher
        finally:
            launcher.close()
