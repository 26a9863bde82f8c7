"""``monitor replay``: a seed's days served again on 127.0.0.1 to the real service, in simulated time.

The seed's files are served by :class:`~monitor.replay.server.SeedServer` as the publishers
served them at the simulated moment; a configuration pointing at that server is written beside
the database and the report; the service (:class:`~monitor.service.runner.Service`: scheduler,
fetches over HTTP, storage, diff, classification, outbox, delivery through apprise) runs on a
:class:`~monitor.replay.clock.SteppedClock`. The clock stands still while the service works;
once everything due at the current moment is done (checks recorded, alerts delivered) it moves
to the next moment a source is due, no sooner than (simulated time elapsed / ``speed``) real
seconds after the start.
So a replay records the same changes, in the same order, however fast or loaded the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from monitor import config as config_module
from monitor.alerts.outbox import Purpose
from monitor.alerts.routing import ESCALATIONS
from monitor.atomicfile import write_atomically
from monitor.config import Config
from monitor.errors import ConfigError, MonitorError
from monitor.models import ChangeClass, StoredChange
from monitor.pipeline import CheckReport
from monitor.replay.clock import SteppedClock
from monitor.replay.server import SeedServer, SeedSite
from monitor.replay.timeline import Timeline, load_timeline, read_yaml
from monitor.report.history import Window
from monitor.report.html import render_report
from monitor.report.load import load_history
from monitor.service.runner import Service
from monitor.store import Store

# How often each source is checked, in simulated time, unless told otherwise: often enough to
# see each change within two hours, seldom enough for three weeks to take seconds.
DEFAULT_EVERY = timedelta(hours=2)
# The default pace: simulated seconds per real second (three weeks in about 14 s). A replay
# goes no faster than this, and slower only when the checks take longer.
DEFAULT_SPEED = 150_000.0
# A step that does not settle within this much real time is a bug, not a slow machine.
STALL_AFTER = 60.0
_POLL = 0.001  # seconds between looks at whether the service has settled
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay. ``speed`` None: as fast as the checks go. ``alerts``: apprise URLs, one
    channel each with the default routing; ``alerts_from``: a configuration file whose
    ``alerts`` channels (with their routing) are used too. ``database`` None: a fresh SQLite
    file in ``out``."""

    out: Path
    report: Path | None = None
    database: str | None = None
    speed: float | None = DEFAULT_SPEED
    every: timedelta = DEFAULT_EVERY
    alerts: tuple[str, ...] = ()
    alerts_from: Path | None = None


@dataclass(frozen=True)
class Fired:
    """A change that alerts: its class, the publisher's time, where it comes from, why, and the
    channels it was queued for."""

    change_id: int
    source_id: str
    publisher: str
    change_class: ChangeClass
    detected_at: datetime
    published_at: datetime | None
    reasons: tuple[str, ...]
    channels: tuple[str, ...]

    @property
    def when(self) -> datetime:
        return self.published_at or self.detected_at


@dataclass
class ReplayResult:
    timeline: Timeline
    config: Config
    report: Path
    fired: list[Fired] = field(default_factory=list)
    quiet: Counter[str] = field(default_factory=Counter)  # changes that alert nobody, by class
    checks: int = 0
    failed_checks: int = 0
    requests: Counter[int] = field(default_factory=Counter)  # answers of the seed server, by status
    deliveries: dict[str, Counter[str]] = field(default_factory=dict)  # channel -> alert status -> count
    seconds: float = 0.0


def replay(
    folder: Path,
    options: ReplayOptions,
    *,
    on_fired: Callable[[Fired], None] = lambda _fired: None,
    on_start: Callable[[Timeline, Config, str], None] = lambda *_: None,
) -> ReplayResult:
    """Replay the seed in ``folder``; ``on_start`` sees the timeline, configuration and server
    URL, ``on_fired`` each alerting change as it is recorded. Raises :class:`MonitorError`
    (:class:`ConfigError` for a bad seed, option or alert channel) before anything is written
    when the input is wrong."""
    timeline = load_timeline(folder)
    channels = _channels(options)
    database = options.database or f"sqlite:///{options.out / 'monitor.db'}"
    site = SeedSite(folder, timeline, (clock := SteppedClock(timeline.start)).now)
    started = time.perf_counter()
    with SeedServer(site) as server:
        config_path = options.out / "monitor.yaml"
        config, text = _configuration(
            config_path, timeline, server, database=database, options=options, channels=channels
        )
        if options.database is None:
            _remove_sqlite(options.out / "monitor.db")
        store = _open_empty(database)
        try:
            # Alert URLs may hold secrets: the configuration is for its owner's eyes only.
            write_atomically(config_path, text, what="the replay's configuration", mode=0o600)
            on_start(timeline, config, server.url)
            result = ReplayResult(timeline, config, options.report or options.out / "report.html")
            asyncio.run(
                _run(
                    config,
                    store,
                    clock,
                    timeline=timeline,
                    speed=options.speed,
                    result=result,
                    on_fired=on_fired,
                )
            )
            history = load_history(store, config, Window(), clock.now())
            write_atomically(result.report, render_report(history), what="the report")
            for alert in store.outbox.alerts():
                result.deliveries.setdefault(alert.channel, Counter())[str(alert.status)] += 1
        finally:
            store.close()
        for (_source, status), count in site.requests.items():
            result.requests[status] += count
    result.seconds = time.perf_counter() - started
    return result


async def _run(
    config: Config,
    store: Store,
    clock: SteppedClock,
    *,
    timeline: Timeline,
    speed: float | None,
    result: ReplayResult,
    on_fired: Callable[[Fired], None],
) -> None:
    def count(report: CheckReport) -> None:
        result.checks += 1
        result.failed_checks += not report.outcome.ok

    store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), clock.now())
    # Simulated time stands still while the service works: the jobs due at a moment all wake
    # together, with no need to wait for others.
    service = Service(
        config, store, on_report=count, transport=LoopbackOnly(), clock=clock, rand=lambda: 0.0, gather=0
    )
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    seen, paced_from = 0, time.perf_counter()
    try:
        while True:
            await _settled(service, running, clock)
            seen = _report_new(store, config, now=clock.now(), seen=seen, result=result, on_fired=on_fired)
            moment = service.next_wake()
            if moment is None or moment > timeline.end:
                break
            if speed is not None:
                due = paced_from + (moment - timeline.start).total_seconds() / speed
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            clock.advance_to(max(moment, clock.now()))
            service.wake_due()
        clock.advance_to(max(clock.now(), timeline.end))
        service.wake_due()  # alerts due by the end (digests) go out before stopping
        await _settled(service, running, clock)
    finally:
        stop.set()
        await running


async def _settled(service: Service, running: asyncio.Task[None], clock: SteppedClock) -> None:
    waited = time.perf_counter()
    while not service.settled():
        if running.done():
            running.result()  # the service's own error, if it failed
            raise MonitorError("the service stopped before the end of the replay")
        if time.perf_counter() - waited > STALL_AFTER:
            raise MonitorError(f"the replay stalled at {clock.now():%Y-%m-%d %H:%M} UTC (simulated)")
        await asyncio.sleep(_POLL)


def _report_new(
    store: Store,
    config: Config,
    *,
    now: datetime,
    seen: int,
    result: ReplayResult,
    on_fired: Callable[[Fired], None],
) -> int:
    """Tell of the changes recorded at ``now`` (the clock stood still while they were) past
    change id ``seen``; returns the newest id."""
    changes = [change for change in store.changes(since=now) if change.id > seen]
    if not changes:
        return seen
    routed: dict[int, list[str]] = {}
    for alert in reversed(store.outbox.alerts()):
        if alert.purpose is Purpose.CHANGE and alert.change_id is not None:
            routed.setdefault(alert.change_id, []).append(alert.channel)
    for change in changes:
        fired = _fired(change, config, tuple(dict.fromkeys(routed.get(change.id, ()))))
        if fired is None:
            result.quiet[change.change_class] += 1
        else:
            result.fired.append(fired)
            on_fired(fired)
    return changes[-1].id


def _fired(change: StoredChange, config: Config, channels: tuple[str, ...]) -> Fired | None:
    """The change as an alert: when it reaches the default threshold (heightened, or relaxed)
    or a configured channel takes it; else None."""
    change_class = ChangeClass(change.change_class)
    if not channels and change_class not in (*ESCALATIONS, ChangeClass.RELAXED):
        return None
    return Fired(
        change_id=change.id,
        source_id=change.source_id,
        publisher=config.source(change.source_id).publisher_name,
        change_class=change_class,
        detected_at=change.detected_at,
        published_at=change.published_at,
        reasons=change.reasons,
        channels=channels,
    )


class LoopbackOnly(httpx.AsyncBaseTransport):
    """The replay's network: HTTP to 127.0.0.1, and nothing else."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != LOOPBACK:
            raise httpx.ConnectError(
                f"the replay reaches only {LOOPBACK}, not {request.url.host}", request=request
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _channels(options: ReplayOptions) -> list[dict[str, Any]]:
    """The alert channels' entries, as a configuration writes them."""
    entries: list[dict[str, Any]] = []
    if options.alerts_from is not None:
        path = options.alerts_from
        raw = read_yaml(path, missing=f"{path}: file not found (--alerts-from)", what="the alert channels")
        found = raw.get("alerts") if isinstance(raw, dict) else None
        if not isinstance(found, list) or not found:
            raise ConfigError(f"{path}: no `alerts` list of channels to replay with (--alerts-from)")
        entries.extend(found)
    taken = {str(entry.get("name")) for entry in entries if isinstance(entry, dict)}
    for index, url in enumerate(options.alerts, start=1):
        name = f"alert-{index}"
        while name in taken:
            name += "x"
        entries.append({"name": name, "url": url})
    return entries


def _configuration(
    path: Path,
    timeline: Timeline,
    server: SeedServer,
    *,
    database: str,
    options: ReplayOptions,
    channels: Sequence[dict[str, Any]],
) -> tuple[Config, str]:
    """The replay's configuration (the seed's sources on the local server, the alert
    channels), validated as any configuration is, and its text, to be written at ``path``
    (beside the database, for ``monitor --config``). Problems can only be the channels'; they
    name where the channels came from."""
    every = f"{options.every.total_seconds():g}s"
    document = {
        "database": database,
        # One host serves every source: no spacing between requests to it.
        "defaults": {"interval": every, "host_spacing": "0s", "per_host": 8, "timeout": "10s"},
        "countries": sorted({c for s in timeline.sources for c in s.countries}),
        "sources": [
            {
                "id": source.id,
                "kind": source.kind,
                "url": server.url_of(source),
                "countries": list(source.countries),
                "options": dict(source.options),
                **({"publisher": source.publisher} if source.publisher else {}),
            }
            for source in timeline.sources
        ],
        "alerts": list(channels),
    }
    header = (
        f"# Written by `monitor replay` for the seed {timeline.title!r}: its sources as served on\n"
        f"# {server.url} during the replay (no longer there). Read its results with\n"
        f"# `monitor --config {path} history` (or report).\n"
    )
    text = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    try:
        return config_module.loads(text, path=path, environ=os.environ), text
    except ConfigError as exc:
        from_option = [
            f"(name: {entry['name']})" for entry in channels[len(channels) - len(options.alerts) :]
        ]

        def origin(problem: str) -> str:
            if options.alerts_from is None or any(name in problem for name in from_option):
                return "--alert"
            return str(options.alerts_from)

        problems = [line.removeprefix(f"{path}: ") for line in str(exc).splitlines()]
        raise ConfigError("\n".join(f"{origin(problem)}: {problem}" for problem in problems)) from None


def _remove_sqlite(path: Path) -> None:
    """Remove the previous replay's SQLite database at ``path``: each replay starts afresh."""
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def _open_empty(database: str) -> Store:
    store = Store.open(database)
    try:
        filled = {table: n for table, n in store.counts().items() if n and table != "alembic_version"}
    except MonitorError:
        store.close()
        raise
    if filled:
        store.close()
        raise MonitorError(
            f"{store.url_for_display} already holds data ({', '.join(sorted(filled))}): a replay "
            "needs an empty database, so that its history is the seed's alone"
        )
    return store
