"""Crash safety of the outbox: delivery workers killed with SIGKILL at random moments, for real.

A worker (tests/support/deliver_loop.py) sends every due alert through apprise to a webhook in
this process and records the outcome; it is killed over and over, often while a message is in
flight. Whatever the timing: every alert is delivered and ends ``sent``, an alert recorded as
sent is never sent again, and the only duplicates are messages that had reached the webhook when
their worker died before recording them, at most one per kill.

Each worker is a fresh process forked from a launcher that has imported everything once, so a
restart costs milliseconds; its clock starts a lease (1 s) ahead of the previous worker's, as if
the restart had taken that long, so whatever the dead worker held is due again at once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest

from monitor.alerts.outbox import AlertStatus
from monitor.alerts.routing import Router
from monitor.config import Config, load
from monitor.models import Change, ChangeClass, Outcome
from monitor.store import ChangeWrite, CheckWrite, SnapshotWrite, Store
from tests.support.receiver import SlowReceiver, WebhookReceiver, alert_id, settle
from tests.support.records import versioned_record

SCRIPT = Path(__file__).resolve().parent / "support" / "deliver_loop.py"
SEED = int(os.environ.get("MONITOR_CRASH_SEED", "20260301"))
ALERTS = 100
KILLS = 25
LEASE = timedelta(seconds=1)  # the worker's
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Launcher:
    """The worker launcher process and the commands it takes."""

    def __init__(self, url: str, config_file: Path, log: IO[str]) -> None:
        self._log = log
        self._workers: set[int] = set()  # started and not yet reaped
        self._process = subprocess.Popen(
            [sys.executable, str(SCRIPT), url, str(config_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            bufsize=1,
        )
        assert self._answer() == "ready"

    def run(self, offset: timedelta) -> int:
        pid = int(self._command(f"run {offset.total_seconds()}"))
        self._workers.add(pid)
        return pid

    def kill(self, pid: int) -> None:
        """SIGKILL a worker and wait for it to be gone; it must not have ended on its own."""
        answer = self._kill(pid)
        assert answer == f"reaped {pid} {int(signal.SIGKILL)} -1", f"{answer}: {self._errors()}"

    def close(self) -> None:
        """Kill any worker left (after a failure) and end the launcher by closing its stdin."""
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            for pid in list(self._workers):
                self._kill(pid)
            self._process.stdin.close()
            self._process.wait(timeout=10)
        finally:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            self._process.stdout.close()

    def _kill(self, pid: int) -> str:
        # The worker is this launcher's child, not reaped yet: its pid cannot have been reused.
        os.kill(pid, signal.SIGKILL)
        self._workers.discard(pid)
        return self._command(f"reap {pid}")

    def _command(self, line: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._answer()

    def _answer(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        assert line, f"the launcher ended: {self._errors()}"
        return line.strip()

    def _errors(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(encoding="utf-8")[-3000:]


@dataclass(frozen=True)
class Kill:
    posts_before: int  # what the webhook had received when the worker was dead
    sent_before: frozenset[str]  # the alerts recorded as sent at that moment


def queue_alerts(store: Store, config: Config, count: int) -> set[str]:
    """``count`` changes of one source in one check, each queued for the one channel."""
    records = {
        f"K{i:03d}": [versioned_record(f"K{i:03d}", version) for version in (0, 1)] for i in range(count)
    }
    router = Router.from_config(config)
    store.save_check(_check(T0, Outcome.NEW, [SnapshotWrite(k, r[0]) for k, r in records.items()], []))
    store.save_check(
        _check(
            T0 + timedelta(minutes=1),
            Outcome.CHANGED,
            [SnapshotWrite(k, r[1]) for k, r in records.items()],
            [
                ChangeWrite(k, Change(k, ChangeClass.SEVERE, ("level raised",), "-a\n+b", 2, 3))
                for k in records
            ],
        ),
        router,
    )
    keys = {a.key for a in store.outbox.alerts()}
    assert len(keys) == count
    return keys


def _check(
    at: datetime, outcome: Outcome, snapshots: list[SnapshotWrite], changes: list[ChangeWrite]
) -> CheckWrite:
    return CheckWrite("crash", at, 10, 200, 100, outcome, snapshots=tuple(snapshots), changes=tuple(changes))


@pytest.fixture
def launcher_log(tmp_path: Path) -> Iterator[IO[str]]:
    with (tmp_path / "launcher.log").open("w+", encoding="utf-8") as log:
        yield log


def test_killed_workers_lose_nothing_and_never_resend_what_they_recorded(
    database_url: str, tmp_path: Path, launcher_log: IO[str]
) -> None:
    print(f"seed {SEED} (set MONITOR_CRASH_SEED to replay)")
    rng = random.Random(SEED)
    started = time.monotonic()
    with SlowReceiver(random.Random(rng.random()), (0.02, 0.05)) as hook, Store.open(database_url) as store:
        config_file = tmp_path / "monitor.yaml"
        config_file.write_text(
            "sources:\n"
            '  - {id: crash, kind: html, url: "https://example.org/crash"}\n'
            "alerts:\n"
            f'  - {{name: hook, url: "json://127.0.0.1:{hook.port}/hook", min_class: update}}\n',
            encoding="utf-8",
        )
        config = load(config_file, environ={})
        store.sync_sources([("crash", "html", "https://example.org/crash")], T0)
        keys = queue_alerts(store, config, ALERTS)

        launcher = Launcher(database_url, config_file, launcher_log)
        try:
            kills = kill_repeatedly(launcher, store, hook, rng)
        finally:
            launcher.close()

        received = [alert_id(post) for post in hook.posts]
        final = {a.key: a for a in store.outbox.alerts()}

    seen = Counter(received)
    duplicates = len(received) - len(seen)
    # A kill "landed between send and record" when the webhook had, by then, received a message
    # of that worker that was not recorded as sent.
    landed: list[set[str]] = []
    before = 0
    for kill in kills:
        unrecorded = set(received[before : kill.posts_before]) - kill.sent_before
        landed.append(unrecorded)
        before = kill.posts_before
    in_flight_kills = sum(1 for unrecorded in landed if unrecorded)
    elapsed = time.monotonic() - started
    print(
        f"{ALERTS} alerts, {KILLS} kills, {len(received)} messages received, {duplicates} duplicates, "
        f"{in_flight_kills} kills between send and record, {len(kills[-1].sent_before)} sent before the "
        f"last worker, {elapsed:.1f} s"
    )
    context = f"seed {SEED}; {_errors(launcher_log)}"

    assert set(seen) == keys, context  # every alert reached the webhook, nothing else did
    assert {a.status for a in final.values()} == {AlertStatus.SENT}, context
    for index, kill in enumerate(kills):
        again = kill.sent_before & set(received[kill.posts_before :])
        assert not again, f"recorded as sent before restart {index + 1}, received again: {again}; {context}"
    assert all(len(unrecorded) <= 1 for unrecorded in landed), context  # one message in flight at a time
    twice = {key for key, times in seen.items() if times > 1}
    assert twice <= set().union(*landed), context  # duplicates only of messages in flight at a kill
    assert duplicates <= in_flight_kills <= KILLS, context
    assert in_flight_kills > 0, f"no kill landed while a message was in flight: nothing was tested; {context}"
    assert all(final[key].attempts >= seen[key] for key in keys), context


def kill_repeatedly(
    launcher: Launcher, store: Store, hook: WebhookReceiver, rng: random.Random
) -> list[Kill]:
    """Start a worker, let it run 20-400 ms, SIGKILL it, note what is recorded and received;
    ``KILLS`` times. Then let a last worker run until everything is sent."""
    kills: list[Kill] = []
    offset = timedelta(0)
    for _ in range(KILLS):
        pid = launcher.run(offset)
        time.sleep(rng.uniform(0.02, 0.4))
        launcher.kill(pid)
        settle(hook)
        sent = frozenset(a.key for a in store.outbox.alerts(AlertStatus.SENT))
        kills.append(Kill(len(hook.posts), sent))
        offset += LEASE  # the next worker starts when what this one held is due again
    pid = launcher.run(offset)
    deadline = time.monotonic() + 30
    while store.outbox.counts()["sent"] < ALERTS and time.monotonic() < deadline:
        time.sleep(0.05)
    launcher.kill(pid)
    settle(hook)
    return kills


def _errors(log: IO[str]) -> str:
    log.flush()
    text = Path(log.name).read_text(encoding="utf-8")
    return f"worker errors: {text[-2000:]}" if text.strip() else "no worker errors"
