"""Crash safety of the service: ``monitor run`` killed with SIGKILL at random moments, for real.

A real HTTP server serves ``SOURCES`` pages; the test moves all of them to a new generation,
lets the service check them (group commits of many checks) and deliver the alerts (apprise to a
slow webhook in this process), kills it after a random delay, starts it again, and waits until
every source has recorded the generation. ``KILLS`` generations, one kill each. After every
kill: the SQLite file passes ``integrity_check``, no alert recorded as sent is ever received
again; after every restart: exactly one change per source per generation, each with its
snapshot, each queued once for the channel. At the end every alert is sent, and the only
duplicates are messages the webhook had received when their process died before recording
them, at most one per kill.

The service is the ``monitor`` command line in a process forked from a launcher that has
imported everything once (tests/support/service_loop.py), so a restart takes milliseconds.
``MONITOR_CRASH_SEED`` replays a run; the seed is printed.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.alerts.outbox import AlertStatus
from monitor.store import Store
from tests.support.httpserver import LocalServer
from tests.support.receiver import SlowReceiver, WebhookReceiver, alert_id, settle
from tests.support.services import ServiceLauncher, service_launcher

SEED = int(os.environ.get("MONITOR_CRASH_SEED", "20260302"))
SOURCES = 50
KILLS = 22
WAIT = 30.0  # seconds a restarted service has to record a generation


def page(index: int, generation: int) -> str:
    return (
        f"<html><body><div class='advice'><h1>Region {index}</h1>"
        f"<p>Advice generation {generation}: travellers to region {index} should follow the "
        f"instructions of the local authorities, issue {generation * 7 + index}.</p></div></body></html>"
    )


def serve(server: LocalServer, generation: int) -> None:
    for index in range(SOURCES):
        server.route(f"/s/{index:03d}", page(index, generation), etag=f'"{index}-{generation}"')


def write_config(path: Path, url: str, server: LocalServer, hook: WebhookReceiver) -> None:
    sources = "\n".join(
        f'  - {{id: s{i:03d}, kind: html, url: "{server.url(f"/s/{i:03d}")}", options: {{select: .advice}}}}'
        for i in range(SOURCES)
    )
    path.write_text(
        f'database: "{url}"\n'
        "defaults: {interval: 1s, timeout: 10s, host_spacing: 0s, per_host: 100, concurrency: 64}\n"
        "service: {lease: 1s, heartbeat: 500ms, shutdown_grace: 1s}\n"
        f"sources:\n{sources}\n"
        "alerts:\n"
        f'  - {{name: hook, url: "json://127.0.0.1:{hook.port}/hook", min_class: noise, health: false}}\n',
        encoding="utf-8",
    )


@dataclass(frozen=True)
class Kill:
    generation: int
    delay: float
    posts_before: int  # what the webhook had received once the service was dead
    sent_before: frozenset[str]  # the alerts recorded as sent at that moment


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[ServiceLauncher]:
    with service_launcher(tmp_path) as launcher:
        yield launcher


def test_service_killed_at_random_loses_nothing_and_resends_nothing_recorded(
    database_url: str, tmp_path: Path, launcher: ServiceLauncher
) -> None:
    print(f"seed {SEED} (set MONITOR_CRASH_SEED to replay)")
    rng = random.Random(SEED)
    started = time.monotonic()
    config = tmp_path / "monitor.yaml"
    pids: list[int] = []
    with (
        LocalServer() as server,
        SlowReceiver(random.Random(rng.random()), (0.01, 0.03)) as hook,
        Store.open(database_url) as store,
    ):
        write_config(config, database_url, server, hook)
        serve(server, 0)
        pids.append(launcher.start("--config", str(config), "run"))
        wait_for(lambda: recorded_generations(store) == dict.fromkeys(source_ids(), 0), launcher, pids)
        kills: list[Kill] = []
        for generation in range(1, KILLS + 1):
            serve(server, generation)
            delay = rng.uniform(0.05, 1.5)
            time.sleep(delay)
            answer = launcher.kill(pids[-1])
            assert answer == f"reaped {pids[-1]} {int(signal.SIGKILL)} -1", (
                f"{answer}: {tail(launcher, pids)}"
            )
            settle(hook)
            kills.append(Kill(generation, delay, len(hook.posts), sent(store)))
            assert_consistent(database_url)
            pids.append(launcher.start("--config", str(config), "run"))
            expected = dict.fromkeys(source_ids(), generation)
            wait_for(lambda: recorded_generations(store) == expected, launcher, pids)  # noqa: B023
            assert_changes_exactly_once(store, generation)
        wait_for(lambda: store.outbox.counts()["sent"] == KILLS * SOURCES, launcher, pids)
        answer = launcher.kill(pids[-1], signal.SIGTERM)
        assert answer == f"reaped {pids[-1]} 0 0", f"{answer}: {tail(launcher, pids)}"
        settle(hook)
        received = [alert_id(post) for post in hook.posts]
        final = {a.key: a for a in store.outbox.alerts()}
        failures = failed_checks_of(store)
        failed_checks = len(failures)

    seen = Counter(received)
    landed = unrecorded_at_kills(kills, received)
    in_flight_kills = sum(1 for unrecorded in landed if unrecorded)
    duplicates = len(received) - len(seen)
    elapsed = time.monotonic() - started
    print(
        f"{database_url.split(':', maxsplit=1)[0]}: {SOURCES} sources, {KILLS} kills (delays "
        f"{min(k.delay for k in kills):.2f}-{max(k.delay for k in kills):.2f} s), {len(final)} alerts, "
        f"{len(received)} messages received, {duplicates} duplicates, {in_flight_kills} kills between "
        f"send and record, {elapsed:.1f} s"
    )
    context = f"seed {SEED}; {tail(launcher, pids)}"
    assert set(seen) == set(final), context  # every alert reached the webhook, nothing else did
    assert {a.status for a in final.values()} == {AlertStatus.SENT}, context
    for index, kill in enumerate(kills):
        again = kill.sent_before & set(received[kill.posts_before :])
        assert not again, f"recorded as sent before kill {index + 1}, received again: {again}; {context}"
    assert all(len(unrecorded) <= 1 for unrecorded in landed), context  # one message in flight at a time
    twice = {key for key, times in seen.items() if times > 1}
    assert twice <= set().union(*landed), context  # duplicates only of messages in flight at a kill
    assert duplicates <= in_flight_kills, context
    assert failed_checks == 0, f"{failures}; {context}"  # a kill is not the publisher's fault
    assert delivered_during_kills(kills) > KILLS // 2, f"kills did not land during delivery; {context}"


def source_ids() -> list[str]:
    return [f"s{i:03d}" for i in range(SOURCES)]


def recorded_generations(store: Store) -> dict[str, int]:
    """Each source with a snapshot -> the generation of its latest snapshot."""
    query = sa.text(
        "SELECT s.source_id, c.text FROM snapshots s JOIN contents c ON c.hash = s.content_hash "
        "WHERE s.id IN (SELECT max(id) FROM snapshots GROUP BY source_id, key)"
    )
    with store.engine.connect() as conn:
        return {source: generation_of(text) for source, text in conn.execute(query).tuples()}


def generation_of(text: str) -> int:
    return int(text.split("Advice generation ", 1)[1].split(":", 1)[0])


def assert_changes_exactly_once(store: Store, generation: int) -> None:
    """Per source, one change per generation 1..``generation``, in order, each linking its
    snapshot to the one before, each with one alert to the channel."""
    query = sa.text(
        "SELECT ch.id, ch.source_id, ch.previous_snapshot_id, prev.id AS prev_found, c.text "
        "FROM changes ch JOIN snapshots s ON s.id = ch.snapshot_id "
        "JOIN contents c ON c.hash = s.content_hash "
        "LEFT JOIN snapshots prev ON prev.id = ch.previous_snapshot_id ORDER BY ch.id"
    )
    alerts = sa.text("SELECT change_id, channel, purpose FROM alerts")
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        queued = Counter((change_id, channel) for change_id, channel, _ in conn.execute(alerts).tuples())
    by_source: dict[str, list[int]] = {}
    for row in rows:
        assert row.prev_found == row.previous_snapshot_id is not None, row
        by_source.setdefault(row.source_id, []).append(generation_of(row.text))
    wanted = list(range(1, generation + 1))
    wrong = {source: found for source, found in by_source.items() if found != wanted}
    assert not wrong and len(by_source) == SOURCES, f"changes per source (want {wanted}): {wrong}"
    assert queued == Counter({(row.id, "hook"): 1 for row in rows}), "alerts per change"


def failed_checks_of(store: Store) -> list[tuple[str, str, str]]:
    """(source, outcome, reason) of every check recorded as a failure."""
    with store.engine.connect() as conn:
        query = sa.text(
            "SELECT source_id, outcome, error FROM checks"
            " WHERE outcome IN ('failed', 'blocked', 'parse_failed')"
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in conn.execute(query)]


def sent(store: Store) -> frozenset[str]:
    return frozenset(a.key for a in store.outbox.alerts(AlertStatus.SENT))


def assert_consistent(url: str) -> None:
    """SQLite: the file a SIGKILL left behind passes its integrity and foreign key checks."""
    if not url.startswith("sqlite"):
        return
    with sqlite3.connect(sa.make_url(url).database or "") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def unrecorded_at_kills(kills: list[Kill], received: list[str]) -> list[set[str]]:
    """Per kill, the messages its process had delivered and not recorded as sent."""
    landed, before = [], 0
    for kill in kills:
        landed.append(set(received[before : kill.posts_before]) - kill.sent_before)
        before = kill.posts_before
    return landed


def delivered_during_kills(kills: list[Kill]) -> int:
    """How many killed processes had delivered something before they died."""
    counts = [0, *(kill.posts_before for kill in kills)]
    return sum(1 for before, after in itertools.pairwise(counts) if after > before)


def wait_for(condition: object, launcher: ServiceLauncher, pids: list[int]) -> None:
    assert callable(condition)
    deadline = time.monotonic() + WAIT
    while not condition():
        assert launcher.alive(pids[-1]), f"the service ended: {tail(launcher, pids)}"
        assert time.monotonic() < deadline, f"not reached within {WAIT} s; {tail(launcher, pids)}"
        time.sleep(0.05)


def tail(launcher: ServiceLauncher, pids: list[int]) -> str:
    logs = "".join(launcher.log(pid) for pid in pids[-2:])
    errors = [line for line in logs.splitlines() if " ERROR " in line or "Traceback" in line]
    return f"service errors: {errors[-20:]}; last log lines: {logs.splitlines()[-15:]}; {launcher.errors()}"
