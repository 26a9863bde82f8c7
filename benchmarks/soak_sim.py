"""The service over simulated days against publishers that fail: memory, files and connections.

    python benchmarks/soak_sim.py                                # 500 sources, 7 simulated days
    python benchmarks/soak_sim.py --sources 100 --days 2 --seed 3
    python benchmarks/soak_sim.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test

The service of ``monitor run`` (:class:`~monitor.service.runner.Service`: its scheduler, claims,
conditional GETs over real HTTP through the production client, parsing, storage, diff,
classification, the outbox and delivery through apprise) runs in this process on a
:class:`~monitor.replay.clock.SteppedClock`, as ``monitor replay`` runs it: simulated time stands
still while the service works and moves to the next moment a source is due once everything due
is done. Moments are rounded up to ``--tick`` (2 minutes of simulated time), so the sources due
within one tick are checked in one round. A tick of 2 minutes checks as often as one of 1 minute:
a source is due again its interval plus up to 30 s of jitter after its check, so a 15-minute
source is checked every 16 minutes either way (60-minute ones every 62); it halves the rounds,
and the wall time is mostly rounds: each one waits, in real time, for the checks of its busiest
host (two at a time per host) and for the group commit of each wave of them (20 ms).

The world runs in a second process (``soak_world.py``), reading the simulated time from a shared
file: N sources of eight kinds on about N/10 hosts of 127.0.0.1 — the ministries' and carriers'
own formats (the files of ``seeds/mali-2025-11``) and 60 KB advisory pages — that change at
random moments and fail at random (5xx bursts, 429 with Retry-After, resets, answers that never
come, block pages, garbage and truncated bodies, slow answers), and a webhook receiver that
alerts go to through apprise (``json://``), down for stretches and flaky until the last simulated
day, then working. So this process holds the service alone: its memory, descriptors and
connections are the service's. Intervals are the kinds' defaults (15 min for ministries and
``html`` pages, 60 min for carriers) unless ``--interval`` says otherwise.

Per simulated day it prints the checks by outcome, the changes, the alerts (queued that day;
sent, pending and failed so far), the resident memory (now and peak), the open file descriptors
(``/proc/self/fd``), the process's TCP connections (its sockets found in ``/proc/self/net/tcp*``),
the database's size, and the wall and CPU seconds the day took. At the end: the peak memory, the
growth from day 1 to the last day, the descriptors and connections of the first and last day,
the outbox (the receiver is down for the two hours before it recovers, at the start of the last
day: how many alerts were pending then, and how long after that nothing was pending; the run
goes on past the last day, up to a simulated day, while anything is), what the publishers and
the receiver answered, the service's log at WARNING and above, and the wall time.
``--json FILE`` writes the same figures as JSON. The exit code is 1 when the outbox did not
drain.

Two clocks are not simulated: HTTP timeouts and slow answers take real time (so the fetcher's
timeout is 2 s, and an answer that never comes holds its connection for 3 real seconds), and the
service's heartbeat and health sweep run every 10 and 60 real seconds. The hosts' Retry-After
is kept by the fetcher's pacer, which reads the real monotonic clock: here it reads the
simulated one (see :func:`pacer_on`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratchdb import database_size, scratch_database
from soak_world import START, PlannedSource, SharedClock, plan

from monitor import config as config_module
from monitor import pipeline
from monitor.config import Config, parse_duration
from monitor.http import HostPacer, HttpSettings
from monitor.models import Outcome
from monitor.pipeline import CheckReport
from monitor.replay.clock import SteppedClock
from monitor.service.runner import Service
from monitor.store import Store

WORLD = Path(__file__).resolve().parent / "soak_world.py"
TICK = timedelta(minutes=2)
TIMEOUT = 2.0  # seconds; the fetcher's timeout, in real time
DRAIN_LIMIT = timedelta(days=1)  # how long past the end the run may go on for the outbox to drain
STALL_AFTER = 120.0  # real seconds a moment may take before the run is given up
SHOWN_ERRORS = 10  # messages of the service's log at ERROR and above kept for the summary
_POLL = 0.001  # real seconds between looks at whether the service has settled
OUTCOMES = tuple(outcome.value for outcome in Outcome)
_TCP_STATES = {"01": "established", "08": "close_wait", "06": "time_wait", "0A": "listen"}


# --- the process, seen from /proc ---------------------------------------------------------------


def memory_mb(field_name: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak) of this process, in MB."""
    if field_name == "VmHWM":
        # The kernel updates the peak lazily: it can lag behind the resident size of the moment.
        return max(_status_mb("VmHWM"), _status_mb("VmRSS"))
    return _status_mb(field_name)


def _status_mb(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field_name} in /proc/self/status")


def socket_inodes() -> set[str]:
    """The inodes of this process's open sockets (``socket:[N]`` links in ``/proc/self/fd``)."""
    found = set()
    for link in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = str(link.readlink())
            if target.startswith("socket:["):
                found.add(target[8:-1])
    return found


def cpu_seconds() -> float:
    """User and system CPU seconds of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def tcp_connections(peers: dict[int, str]) -> Counter[str]:
    """This process's TCP sockets by state and peer (``peers``: remote port -> name, e.g.
    ``publishers``), read from ``/proc/self/net/tcp`` and ``tcp6`` (which list the whole network
    namespace: only the sockets this process holds count)."""
    mine, found = socket_inodes(), Counter[str]()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/self/net/{table}").read_text(encoding="ascii").splitlines()[1:]:
                fields = line.split()
                if fields[9] not in mine:
                    continue
                state = _TCP_STATES.get(fields[3], f"state {fields[3]}")
                peer = peers.get(int(fields[2].rsplit(":", 1)[1], 16), "other")
                found[f"{peer} {state}"] += 1
    return found


# --- figures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaySample:
    """The service at the end of one simulated day."""

    day: int
    checks: dict[str, int]  # this day's checks by outcome
    changes: int  # recorded this day
    queued: int  # alerts queued this day
    alerts: dict[str, int]  # every alert so far by status (pending, sent, failed)
    rss_mb: float
    peak_mb: float
    fds: int
    tcp: dict[str, int]  # connections by peer and state
    db_mb: float
    wall: float  # real seconds this day took
    cpu: float  # CPU seconds of this process this day

    @property
    def total_checks(self) -> int:
        return sum(self.checks.values())

    @property
    def connections(self) -> int:
        return sum(count for name, count in self.tcp.items() if not name.endswith(" listen"))


@dataclass
class Tally:
    """Every check the service reported: by outcome, and the changes."""

    checks: Counter[str] = field(default_factory=Counter)
    changes: int = 0

    def add(self, report: CheckReport) -> None:
        self.checks[report.outcome.value] += 1
        self.changes += len(report.changes)


@dataclass
class SoakResult:
    sources: int
    kinds: dict[str, int]
    hosts: list[str]  # the publishers' hosts (one port of 127.0.0.1 each)
    days: list[DaySample]
    drained: bool  # nothing pending at the end
    recovered_at: str  # when the receiver started to work for good (simulated)
    pending_at_recovery: int  # alerts pending then
    drain_minutes: float  # simulated minutes from then until nothing was pending
    reported: dict[str, int]  # checks the service reported, by outcome
    stored: dict[str, int]  # rows of the checks table, by outcome
    alerts_by_purpose: dict[str, int]  # "purpose status" -> count
    retried_alerts: int  # alerts sent or failed after more than one attempt
    world: dict[str, Any]
    warnings: dict[str, int]  # the service's log records at WARNING and above, by level and logger
    errors: list[str]  # the first messages at ERROR and above
    wall: float
    peak_mb: float
    settings: dict[str, Any]


# --- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    sources: int = 500
    days: int = 7
    seed: int = 1
    database: str | None = None
    tick: timedelta = TICK
    timeout: float = TIMEOUT
    intervals: dict[str, str] = field(default_factory=dict)  # family (html, ministry, carrier) -> duration


@contextlib.contextmanager
def pacer_on(clock: SteppedClock) -> Iterator[None]:
    """Fetchers built meanwhile keep the hosts' Retry-After on the simulated clock.

    The service's pacer reads ``time.monotonic``: a Retry-After of ten minutes would hold a host
    back for ten real minutes, days of simulated time. Requests are not spaced (the
    configuration's ``host_spacing`` is 0) and a Retry-After is never waited for but turned into
    a check due when it ends (``max_wait`` 0): simulated time stands still while the service
    works, so a wait would never end."""
    namespace = vars(pipeline)  # where FetcherPool looks the function up
    original = namespace["pacer_for"]

    def simulated(settings: HttpSettings) -> HostPacer:
        return HostPacer(settings.host_spacing, max_wait=0.0, clock=lambda: clock.now().timestamp())

    namespace["pacer_for"] = simulated
    try:
        yield
    finally:
        namespace["pacer_for"] = original


@contextlib.contextmanager
def world_process(options: Options, clock_file: Path, log: IO[bytes]) -> Iterator[dict[str, Any]]:
    """``soak_world.py`` started, until the block ends; yields its ports."""
    command = [
        sys.executable,
        str(WORLD),
        *("--sources", str(options.sources), "--days", str(options.days), "--seed", str(options.seed)),
        *("--clock", str(clock_file), "--hang", str(options.timeout + 1)),
    ]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    try:
        assert process.stdout is not None and process.stdin is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the world exited with code {process.wait()}")
        yield json.loads(line)
        process.stdin.close()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def configuration(
    planned: list[PlannedSource], ports: dict[str, Any], database: str, options: Options
) -> Config:
    """The monitor's configuration: every planned source on its host, one webhook channel."""
    sources = []
    for source in planned:
        entry: dict[str, Any] = {
            "id": source.id,
            "kind": source.kind,
            "url": f"http://127.0.0.1:{ports['ports'][source.host]}{source.path}",
            "countries": list(source.countries),
            "options": source.options,
        }
        if source.family in options.intervals:
            entry["interval"] = options.intervals[source.family]
        sources.append(entry)
    document = {
        "database": database,
        # All hosts are local: no spacing (it would run on the real clock); a short timeout,
        # since an answer that never comes takes real time.
        "defaults": {"host_spacing": "0s", "timeout": f"{options.timeout:g}s"},
        "countries": ["ML"],
        "sources": sources,
        "alerts": [{"name": "webhook", "url": f"json://127.0.0.1:{ports['receiver']}/hook"}],
    }
    text = yaml.safe_dump(document, sort_keys=False)
    return config_module.loads(text, path=Path("soak.yaml"), environ=os.environ)


async def settle(service: Service, running: asyncio.Task[None], clock: SteppedClock) -> None:
    """Wait until everything due at the current moment is done."""
    waited = time.perf_counter()
    while not service.settled():
        if running.done():
            running.result()
            raise RuntimeError("the service stopped")
        if time.perf_counter() - waited > STALL_AFTER:
            raise RuntimeError(f"no progress at {clock.now():%Y-%m-%d %H:%M} (simulated)")
        await asyncio.sleep(_POLL)


def rounded_up(moment: datetime, tick: timedelta) -> datetime:
    """``moment`` on the next tick of the simulated clock (ticks counted from :data:`START`)."""
    ticks = math.ceil((moment - START) / tick)
    return START + ticks * tick


class Driver:
    """Moves the simulated clock through the days, sampling the process at each day's end, and
    watches the outbox from the moment the receiver recovers (``recovered_at``) until nothing
    is pending."""

    def __init__(
        self,
        service: Service,
        store: Store,
        clock: SteppedClock,
        shared: SharedClock,
        *,
        tally: Tally,
        options: Options,
        sample: Callable[[int], DaySample],
        recovered_at: datetime,
    ) -> None:
        self._service, self._store, self._clock, self._shared = service, store, clock, shared
        self._tally, self._options, self._sample = tally, options, sample
        self._recovered_at = recovered_at
        self.days: list[DaySample] = []
        self.pending_at_recovery = 0
        self.drained_at: datetime | None = None  # when nothing was pending, the receiver working
        self._watching = False

    async def run(self) -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(self._service.run(stop))
        days = [START + timedelta(days=day) for day in range(1, self._options.days + 1)]
        try:
            for stop_at in sorted({*days, self._recovered_at}):
                await self._until(stop_at, running)
                if stop_at == self._recovered_at:
                    self.pending_at_recovery = self._pending()
                    self._watching = True
                if stop_at in days:
                    self.days.append(self._sample(days.index(stop_at) + 1))
            await self._drain(days[-1] + DRAIN_LIMIT, running)
        finally:
            stop.set()
            await running

    async def _until(self, boundary: datetime, running: asyncio.Task[None]) -> None:
        """Step through the moments due before ``boundary``, then to ``boundary`` itself."""
        while True:
            await settle(self._service, running, self._clock)
            self._watch()
            if self._clock.now() >= boundary:
                return
            self._advance(min(self._next_moment(), boundary))

    async def _drain(self, limit: datetime, running: asyncio.Task[None]) -> None:
        """After the last day: go on until no alert is pending (or ``limit``)."""
        if self._pending() == 0:
            self.drained_at = self.drained_at or self._clock.now()
            return
        self._watching = True
        while self._watching and self._clock.now() < limit:
            self._advance(min(self._next_moment(), limit))
            await settle(self._service, running, self._clock)
            self._watch()

    def _watch(self) -> None:
        """Once the receiver has recovered: note when nothing is pending any more."""
        if self._watching and self._pending() == 0:
            self.drained_at, self._watching = self._clock.now(), False

    def _pending(self) -> int:
        return self._store.outbox.counts()["pending"]

    def _next_moment(self) -> datetime:
        """The tick at which the next source is due; at least one tick on (what was due now is
        done once the service has settled)."""
        due = self._service.next_wake()
        later = self._clock.now() + self._options.tick
        return later if due is None else max(rounded_up(due, self._options.tick), later)

    def _advance(self, moment: datetime) -> None:
        moment = max(moment, self._clock.now())
        self._shared.set(moment)  # the world first: the service may ask it at once
        self._clock.advance_to(moment)
        self._service.wake_due()


class Sampler:
    """Takes a :class:`DaySample` at each day's end: differences with the previous one."""

    def __init__(self, store: Store, url: str, tally: Tally, peers: dict[int, str]) -> None:
        self._store, self._url, self._tally, self._peers = store, url, tally, peers
        self._checks: Counter[str] = Counter()
        self._changes = self._queued = 0
        self._since, self._cpu = time.perf_counter(), cpu_seconds()

    def __call__(self, day: int) -> DaySample:
        alerts = self._store.outbox.counts()
        queued = sum(alerts.values())
        now, cpu = time.perf_counter(), cpu_seconds()
        sample = DaySample(
            day=day,
            checks=dict(self._tally.checks - self._checks),
            changes=self._tally.changes - self._changes,
            queued=queued - self._queued,
            alerts=alerts,
            rss_mb=memory_mb("VmRSS"),
            peak_mb=memory_mb("VmHWM"),
            fds=open_fds(),
            tcp=dict(tcp_connections(self._peers)),
            db_mb=database_size(self._url) / 1e6,
            wall=now - self._since,
            cpu=cpu - self._cpu,
        )
        self._checks, self._changes, self._queued = Counter(self._tally.checks), self._tally.changes, queued
        self._since, self._cpu = now, cpu
        return sample


class Warnings(logging.Handler):
    """Counts the service's log records at WARNING and above, by logger and level."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: Counter[str] = Counter()
        self.errors: list[str] = []  # the first few messages at ERROR and above

    def emit(self, record: logging.LogRecord) -> None:
        self.seen[f"{record.levelname} {record.name}"] += 1
        if record.levelno >= logging.ERROR and len(self.errors) < SHOWN_ERRORS:
            self.errors.append(record.getMessage()[:300])

    def counts(self) -> dict[str, int]:
        return dict(self.seen)


@contextlib.contextmanager
def service_log(path: Path) -> Iterator[Warnings]:
    """The service's log (WARNING and above: failed checks, broken sources, failed deliveries)
    goes to ``path`` instead of the terminal, and is counted."""
    root = logging.getLogger()
    to_file, counted = logging.FileHandler(path, encoding="utf-8"), Warnings()
    to_file.setLevel(logging.WARNING)
    level = root.level
    root.setLevel(logging.WARNING)
    root.addHandler(to_file)
    root.addHandler(counted)
    try:
        yield counted
    finally:
        root.removeHandler(to_file)
        root.removeHandler(counted)
        root.setLevel(level)
        to_file.close()


def stored_checks(store: Store) -> dict[str, int]:
    query = sa.text("SELECT outcome, count(*) FROM checks GROUP BY outcome")
    with store.engine.connect() as connection:
        return {str(outcome): int(count) for outcome, count in connection.execute(query)}


def alert_figures(store: Store) -> tuple[dict[str, int], int]:
    """Alerts by "purpose status", and how many took more than one attempt."""
    by_purpose = sa.text("SELECT purpose, status, count(*) FROM alerts GROUP BY purpose, status")
    retried = sa.text("SELECT count(*) FROM alerts WHERE attempts > 1 AND status != 'pending'")
    with store.engine.connect() as connection:
        figures = {f"{p} {s}": int(n) for p, s, n in connection.execute(by_purpose)}
        return figures, int(connection.execute(retried).scalar_one())


def run(options: Options, on_day: Callable[[DaySample], None] = lambda _day: None) -> SoakResult:
    """The whole soak; ``on_day`` sees each day's sample as it is taken."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        os.environ.pop(name, None)  # the publishers are on loopback: straight there
    started = time.perf_counter()
    planned = plan(options.sources)
    with (
        tempfile.TemporaryDirectory(prefix="soak-sim-") as tmp,
        service_log(Path(tmp) / "service.log") as warnings,
    ):
        folder = Path(tmp)
        shared = SharedClock(folder / "clock", create=True)
        shared.set(START)
        with (
            (folder / "world.log").open("wb") as log,
            world_process(options, folder / "clock", log) as ports,
            scratch_database(options.database, folder, "soak") as url,
        ):
            result = _run(options, planned=planned, ports=ports, url=url, shared=shared, on_day=on_day)
            result.world = httpx.get(f"http://127.0.0.1:{ports['receiver']}/_stats", timeout=10).json()
        result.warnings, result.errors = warnings.counts(), warnings.errors
        shared.close()
    result.wall = time.perf_counter() - started
    return result


def _run(
    options: Options,
    *,
    planned: list[PlannedSource],
    ports: dict[str, Any],
    url: str,
    shared: SharedClock,
    on_day: Callable[[DaySample], None],
) -> SoakResult:
    config = configuration(planned, ports, url, options)
    recovered_at = datetime.fromisoformat(ports["recovered_at"])
    peers = {int(port): "publishers" for port in ports["ports"].values()}
    peers[int(ports["receiver"])] = "receiver"
    if options.database:
        peers[make_url(url).port or 5432] = "database"
    store = Store.open(url)
    clock, tally = SteppedClock(START), Tally()
    try:
        store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), clock.now())
        sampler = Sampler(store, url, tally, peers)

        def sample(day: int) -> DaySample:
            taken = sampler(day)
            on_day(taken)
            return taken

        with pacer_on(clock):
            service = Service(
                config,
                store,
                on_report=tally.add,
                clock=clock,
                rand=random.Random(options.seed).random,
                gather=0,
            )
            driver = Driver(
                service,
                store,
                clock,
                shared,
                tally=tally,
                options=options,
                sample=sample,
                recovered_at=recovered_at,
            )
            asyncio.run(driver.run())
        by_purpose, retried = alert_figures(store)
        return SoakResult(
            sources=len(planned),
            kinds=dict(Counter(s.kind for s in planned)),
            hosts=sorted(ports["ports"]),
            days=driver.days,
            drained=driver.drained_at is not None and store.outbox.counts()["pending"] == 0,
            recovered_at=recovered_at.isoformat(),
            pending_at_recovery=driver.pending_at_recovery,
            drain_minutes=((driver.drained_at or clock.now()) - recovered_at).total_seconds() / 60,
            reported=dict(tally.checks),
            stored=stored_checks(store),
            alerts_by_purpose=by_purpose,
            retried_alerts=retried,
            world={},
            warnings={},
            errors=[],
            wall=0.0,
            peak_mb=max(memory_mb("VmHWM"), *(day.peak_mb for day in driver.days)),
            settings={
                "tick_s": options.tick.total_seconds(),
                "timeout_s": options.timeout,
                "interval_minutes": {
                    s.kind: config.interval_of(s).total_seconds() / 60 for s in config.sources
                },
                "database": "PostgreSQL" if options.database else "SQLite",
            },
        )
    finally:
        store.close()


# --- printing -----------------------------------------------------------------------------------

COLUMNS = (
    ("checks", 7),
    ("304", 6),
    ("same", 5),
    ("changed", 7),
    ("new", 4),
    ("held", 4),
    ("failed", 6),
    ("blocked", 7),
    ("parse", 5),
    ("changes", 7),
    ("queued", 6),
    ("sent", 5),
    ("pending", 7),
    ("failed", 6),
    ("rss MB", 6),
    ("peak", 5),
    ("fds", 4),
    ("tcp", 4),
    ("db MB", 6),
    ("wall s", 6),
    ("cpu s", 5),
)
HEADER = "day " + " ".join(f"{name:>{width}}" for name, width in COLUMNS)


def row(sample: DaySample) -> str:
    c = sample.checks
    values = (
        f"{sample.total_checks:,}",
        c.get("not_modified", 0),
        c.get("unchanged", 0),
        c.get("changed", 0),
        c.get("new", 0),
        c.get("held", 0),
        c.get("failed", 0),
        c.get("blocked", 0),
        c.get("parse_failed", 0),
        sample.changes,
        sample.queued,
        sample.alerts["sent"],
        sample.alerts["pending"],
        sample.alerts["failed"],
        f"{sample.rss_mb:.1f}",
        f"{sample.peak_mb:.0f}",
        sample.fds,
        sample.connections,
        f"{sample.db_mb:.1f}",
        f"{sample.wall:.0f}",
        f"{sample.cpu:.0f}",
    )
    return f"{sample.day:>3} " + " ".join(
        f"{value:>{width}}" for value, (_, width) in zip(values, COLUMNS, strict=True)
    )


def summary(result: SoakResult) -> list[str]:
    first, last = result.days[0], result.days[-1]
    last_alerts = last.alerts
    posts = ", ".join(f"{n} x {status}" for status, n in sorted(result.world.get("posts", {}).items()))
    answers = Counter(result.world.get("answers", {}))
    return [
        f"memory: peak {result.peak_mb:.1f} MB (VmHWM); RSS day 1 {first.rss_mb:.1f} MB, day {last.day} "
        f"{last.rss_mb:.1f} MB: growth {last.rss_mb - first.rss_mb:+.1f} MB",
        f"open files: day 1 {first.fds}, day {last.day} {last.fds}; TCP connections: day 1 "
        f"{first.connections} ({_tcp(first)}), day {last.day} {last.connections} ({_tcp(last)})",
        f"outbox: {result.pending_at_recovery} alerts pending when the receiver recovered "
        f"({result.recovered_at[:16]} simulated); "
        + (f"drained {result.drain_minutes:.0f} simulated minutes later" if result.drained else "NOT DRAINED")
        + f"; {sum(last_alerts.values())} alerts by day {last.day}'s end; by purpose and status at the end: "
        + ", ".join(f"{n} {k}" for k, n in sorted(result.alerts_by_purpose.items()))
        + f"; {result.retried_alerts} needed more than one attempt",
        f"receiver answers: {posts}",
        f"checks: {sum(result.reported.values()):,} reported, {sum(result.stored.values()):,} stored; "
        f"{sum(answers.values()):,} requests answered by the publishers: "
        + ", ".join(f"{n:,} {label}" for label, n in answers.most_common()),
        "fault episodes: "
        + ", ".join(f"{n} {k}" for k, n in sorted(result.world.get("episodes", {}).items())),
        "service log: " + (", ".join(f"{n} {k}" for k, n in sorted(result.warnings.items())) or "nothing"),
        *(f"  {message}" for message in result.errors),
        f"CPU: this process {sum(day.cpu for day in result.days):.0f} s over the {len(result.days)} days, "
        f"the world {result.world.get('cpu_seconds', 0):.0f} s",
        f"wall time {result.wall:.0f} s",
    ]


def _tcp(sample: DaySample) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(sample.tcp.items())) or "none"


def intervals_of(values: list[str]) -> dict[str, str]:
    """``--interval FAMILY=DURATION`` options as a mapping (durations checked)."""
    found = {}
    for value in values:
        family, _, duration = value.partition("=")
        if family not in ("html", "ministry", "carrier"):
            raise ValueError(f"--interval {value}: say html=, ministry= or carrier=")
        parse_duration(duration)
        found[family] = duration
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sources", type=int, default=500, help="sources (default 500)")
    parser.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    parser.add_argument("--seed", type=int, default=1, help="the random generators' seed (default 1)")
    parser.add_argument(
        "--database", metavar="URL", help="a PostgreSQL URL: a new database there (default SQLite)"
    )
    parser.add_argument("--tick", default="2m", help="simulated time is rounded up to this (default 2m)")
    parser.add_argument(
        "--interval",
        action="append",
        default=[],
        metavar="FAMILY=DURATION",
        help="html=, ministry= or carrier= interval (default: the kinds' own, 15m and 60m)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    try:
        options = Options(
            sources=args.sources,
            days=args.days,
            seed=args.seed,
            database=args.database,
            tick=parse_duration(args.tick),
            intervals=intervals_of(args.interval),
        )
    except ValueError as exc:
        parser.error(str(exc))
    if options.sources < 8 or options.days < 1:
        parser.error("--sources takes at least 8 (one of each kind), --days at least 1")
    if options.tick <= timedelta(0) or timedelta(days=1) % options.tick:
        parser.error("--tick must divide a day (30s, 1m, 2m, 5m...)")
    print(
        f"{options.sources} sources, {options.days} simulated days, seed {options.seed}, "
        f"{'PostgreSQL' if options.database else 'SQLite'}, tick {args.tick}, timeout {options.timeout:g} s, "
        "intervals: " + (", ".join(f"{k} {v}" for k, v in options.intervals.items()) or "the kinds' own")
    )
    print(HEADER, flush=True)
    result = run(options, lambda sample: print(row(sample), flush=True))
    for line in summary(result):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=1, default=str), encoding="utf-8")
    return 0 if result.drained else 1


if __name__ == "__main__":
    sys.exit(main())
