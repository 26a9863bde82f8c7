"""``monitor run``: the long-running service.

One APScheduler (asyncio) job per source wakes the worker when the source should be due. What is
due is decided in the database (:mod:`monitor.service.claims`), so any number of workers share
one schedule: a job that fires takes the source (and the sources reading the same document,
when they are due within :data:`SHARE_WINDOW`) with a lease, checks them with one fetch of that
document, and the check records when the source is due again (its interval, a backoff after
failures, or a publisher's Retry-After). Then the job sleeps until that time, plus jitter.

Around the jobs: a heartbeat that renews the leases of checks in flight, a sweep that marks
sources unhealthy when they have not been checked successfully for too long, and the alert
delivery loop. SIGHUP reloads the configuration; stopping lets checks in flight finish (for
``service.shutdown_grace``), abandons the rest without writing anything, releases their leases
and delivers what is due before returning. Delivery gets what is left of the grace: then each
channel finishes the message it is sending and gives back the alerts it has not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor import healthstore
from monitor.alerts.delivery import Deliverer, Delivery
from monitor.alerts.outbox import Alert
from monitor.checkwriter import CheckWriter
from monitor.config import Config, SourceConfig
from monitor.errors import StorageError
from monitor.pipeline import (
    CheckReport,
    Clock,
    FetcherPool,
    Policy,
    check_source,
    group_size,
    http_settings,
    run_checks,
    utcnow,
)
from monitor.schedule import jitter_for, jittered
from monitor.service.claims import Claims, new_worker_id
from monitor.service.metrics import Metrics
from monitor.service.outage import DatabaseOutage
from monitor.service.timebase import REAL_TIME, RealTime, Timebase
from monitor.sources import Source, build
from monitor.sources.base import Fetches
from monitor.store import SourceState, Store

log = logging.getLogger(__name__)

# How often the outbox is looked at: retries and digests fall due between checks.
DELIVERY_TICK = 5.0
# Sources reading one document that fall due within this much of each other are checked
# together, with one request for the document.
SHARE_WINDOW = timedelta(seconds=60)
# Jobs woken within this many seconds of each other are checked in one round: one transaction
# takes them, one batch checks them, one read sets their next wake (0: only those woken together).
ROUND_GATHER = 0.1
# How often sources are looked at for staleness (no successful check for 3x their interval).
SWEEP_EVERY = timedelta(seconds=60)
# `run --once` checks what is due within this much: a cron job or timer firing a few seconds
# before a source's due time still checks it.
ONCE_SLACK = timedelta(minutes=1)
# At start, sources are spread over at most this much (then by their jitter): checks begin at once.
STARTUP_SPREAD = timedelta(seconds=5)
# Workers not heard of for this long are dropped from the `workers` table.
FORGET_WORKERS_AFTER = timedelta(days=7)


class _ExpectedSkips(logging.Filter):
    """APScheduler warns whenever a job wakes while its previous run goes on. Here that is
    expected (a slow check, a database that keeps a round waiting) and handled: the wake is
    skipped, the job wakes again. One line per source per interval would bury the one warning
    that says why (see :mod:`monitor.service.outage`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_EXPECTED_SKIPS = _ExpectedSkips()


def freeze_startup() -> None:
    """Keep what start-up built (modules, the configuration of every source) out of the garbage
    collector's full passes: on 10,000 sources each pass walked it all, a tenth of a cycle."""
    gc.collect()
    gc.freeze()


def sharing_groups(sources: Sequence[SourceConfig]) -> dict[str, tuple[str, ...]]:
    """Each source id -> the ids of the sources reading the same document (itself included)."""
    by_document: dict[tuple[str, str, str | None], list[str]] = {}
    for source in sources:
        by_document.setdefault((source.fetcher, source.url, source.wait_for), []).append(source.id)
    return {sid: tuple(ids) for ids in by_document.values() for sid in ids}


@dataclass
class _Runtime:
    """Everything built from one configuration; replaced as a whole on reload."""

    config: Config
    policy: Policy
    pool: FetcherPool
    deliverer: Deliverer
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)


class Service:
    """One worker of the service. ``clock`` (see :mod:`monitor.service.timebase`) and ``rand``
    are injectable; ``transport`` replaces the network (tests). ``on_report`` sees every check
    (the CLI logs it). ``gather``: seconds a woken job waits for others to share its round."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        on_report: Callable[[CheckReport], None] = lambda _report: None,
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Timebase = REAL_TIME,
        rand: Callable[[], float] = random.random,
        worker_id: str | None = None,
        gather: float = ROUND_GATHER,
    ) -> None:
        self.id = worker_id or new_worker_id()
        self._gather = gather
        self._store = store
        self._claims: Claims = store.claims
        self._on_report = on_report
        self._metrics = metrics
        self._transport = transport
        self._clock, self._now, self._rand = clock, clock.now, rand
        self._started = self._now()
        self._scheduler = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        logging.getLogger("apscheduler.scheduler").addFilter(_EXPECTED_SKIPS)
        self._scheduler.add_listener(
            self._job_ended, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED
        )
        self._inflight: set[str] = set()
        self._running: set[asyncio.Task[None]] = set()
        self._wakes: dict[str, datetime] = {}  # source id -> the moment its job is to wake at
        self._waking: set[str] = set()  # sources whose job is due now and has not finished
        self._wake = asyncio.Event()  # delivery is wanted now
        self._delivery_idle = asyncio.Event()  # no delivery pass is running
        self._halt = threading.Event()  # set when stopping's grace is over: delivery sends no more
        self._old_pools: list[FetcherPool] = []
        self._due: dict[str, asyncio.Future[None]] = {}  # sources waiting for the next round
        self._outage = DatabaseOutage()
        self._rt = self._runtime(config)
        self._writer = CheckWriter(store, largest=group_size(self._rt.pool.settings))

    # --- state seen from outside -------------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._rt.config

    @property
    def intervals(self) -> Mapping[str, timedelta]:
        return self._rt.policy.intervals

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def settled(self) -> bool:
        """Whether everything due by now is done: no source's job due and unfinished, no check
        running, no delivery pass running or wanted. (A replay moves its clock on only then.)"""
        return (
            not self._waking
            and not self._running
            and self._delivery_idle.is_set()
            and not self._wake.is_set()
        )

    def next_wake(self) -> datetime | None:
        """The earliest moment a source's job is to wake at, None without sources."""
        return min(self._wakes.values(), default=None)

    def wake_due(self) -> None:
        """Wake the jobs due by now, and delivery (retries and digests may be due): for a clock
        that has just moved on, whose moments had no real time before."""
        now = self._now()
        for source_id, moment in list(self._wakes.items()):
            if moment <= now:
                self._arm(source_id, moment)
        self._wake.set()

    def problem(self) -> str | None:
        """Why the worker is not healthy (for ``/healthz``), or None."""
        if not self.running:
            return "the scheduler is not running"
        if (outage := self._outage.problem()) is not None:
            return outage
        try:
            self._claims.timings(())
        except StorageError as exc:
            return f"the database does not answer: {exc}"
        return None

    # --- running -----------------------------------------------------------------------------

    async def run(
        self,
        stop: asyncio.Event,
        reload: asyncio.Event | None = None,
        load: Callable[[], Config] | None = None,
    ) -> None:
        """Run until ``stop`` is set; on ``reload`` (set by SIGHUP) apply ``load()``."""
        self._sync_jobs({}, self._rt.sources)
        beat = self._rt.config.service.heartbeat.total_seconds()
        self._scheduler.add_job(
            self._beat, "interval", seconds=beat, id="~heartbeat", next_run_time=self._clock.wall(self._now())
        )
        self._scheduler.add_job(self._sweep, "interval", seconds=SWEEP_EVERY.total_seconds(), id="~sweep")
        self._scheduler.start()
        delivering = asyncio.create_task(self._deliver_until(stop))
        reloading = asyncio.create_task(self._watch_reload(stop, reload, load)) if reload and load else None
        try:
            await stop.wait()
        finally:
            if reloading is not None:
                reloading.cancel()
            await self._shutdown(delivering)

    def reload(self, config: Config) -> None:
        """Apply a new configuration: sources added, removed or changed take effect now."""
        old = self._rt
        self._store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), self._now())
        rt = self._runtime(config, reuse=old)
        changed = [sid for sid, s in rt.sources.items() if sid in old.sources and old.sources[sid] != s]
        self._claims.make_due(changed)
        self._rt = rt
        self._sync_jobs(old.sources, rt.sources)
        added = len(rt.sources.keys() - old.sources.keys())
        removed = len(old.sources.keys() - rt.sources.keys())
        log.info(
            "configuration reloaded: %d sources (%d added, %d removed, %d changed), %d alert channels",
            len(rt.sources),
            added,
            removed,
            len(changed),
            len(config.alerts),
        )

    def _runtime(self, config: Config, reuse: _Runtime | None = None) -> _Runtime:
        same_http = reuse is not None and (
            http_settings(reuse.config) == http_settings(config)
            and reuse.config.defaults.browser_path == config.defaults.browser_path
        )
        if reuse is not None and not same_http:
            self._old_pools.append(reuse.pool)  # closed at shutdown: checks in flight may still use it
        pool = reuse.pool if reuse is not None and same_http else FetcherPool(config, self._transport)
        observe = self._observe_delivery if self._metrics is not None else None
        return _Runtime(
            config=config,
            policy=Policy.from_config(config),
            pool=pool,
            # The service's lease on the alerts it sends is its lease on sources: renewed before
            # each message, it only has to outlast one, and a worker killed while sending leaves
            # its alerts to the next start (or another worker) that much later.
            deliverer=Deliverer(
                config, self._store, now=self._now, observe=observe, lease=config.service.lease
            ),
            sources={s.id: s for s in config.sources},
            groups=sharing_groups(config.sources),
        )

    def _sync_jobs(self, old: Mapping[str, SourceConfig], new: Mapping[str, SourceConfig]) -> None:
        now = self._now()
        for sid in old.keys() - new.keys():
            self._remove_job(sid)
        for sid, source in new.items():
            if sid in old and old[sid] == source:
                continue
            self._remove_job(sid)
            interval = self._rt.config.interval_of(source)
            first = now + min(STARTUP_SPREAD, jitter_for(interval)) * self._rand()
            self._scheduler.add_job(
                self._fire,
                "interval",
                args=(sid,),
                seconds=interval.total_seconds(),
                id=sid,
                next_run_time=self._clock.wall(first),
            )
            self._note_wake(sid, first)

    def _arm(self, source_id: str, moment: datetime) -> None:
        """Make the source's job wake at ``moment`` (paused while the moment has no real time)."""
        with contextlib.suppress(JobLookupError):  # removed by a reload meanwhile
            self._scheduler.modify_job(source_id, next_run_time=self._clock.wall(moment))
            self._note_wake(source_id, moment)

    def _note_wake(self, source_id: str, moment: datetime) -> None:
        self._wakes[source_id] = moment
        if moment <= self._now():
            self._waking.add(source_id)

    def _job_ended(self, event: JobEvent) -> None:
        # Told once the scheduler counts the run as over (or skipped): only then may the job run
        # again, so only then is it no longer waking.
        self._waking.discard(event.job_id)

    def _remove_job(self, source_id: str) -> None:
        self._wakes.pop(source_id, None)
        self._waking.discard(source_id)
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(source_id)

    async def _fire(self, source_id: str) -> None:
        """A source's job: join the next round (see :meth:`_round`), wait for it to end."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            if source_id not in self._rt.groups:
                return
            if not self._due:
                # Every job the scheduler wakes until then joins this round.
                loop = asyncio.get_running_loop()
                if self._gather > 0:
                    loop.call_later(self._gather, self._start_round)
                else:
                    loop.call_soon(self._start_round)
            if source_id not in self._due:
                self._due[source_id] = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._due[source_id])
        except asyncio.CancelledError:
            # Stopping abandoned the check before it recorded anything; its lease is released.
            log.info("%s: check abandoned", source_id)
        finally:
            if task is not None:
                self._running.discard(task)

    def _start_round(self) -> None:
        due, self._due = self._due, {}
        task = asyncio.ensure_future(self._round(list(due)))
        self._running.add(task)

        def ended(done: asyncio.Task[None]) -> None:
            self._running.discard(done)
            failure = None if done.cancelled() else done.exception()
            for waiting in due.values():
                if waiting.done():
                    continue
                if failure is not None:
                    waiting.set_exception(failure)
                else:
                    waiting.set_result(None)

        task.add_done_callback(ended)

    async def _round(self, woken: Sequence[str]) -> None:
        """The sources whose jobs woke together: take those due (and their siblings due soon)
        in one transaction, check them in one batch, set every job's next wake from one read."""
        rt = self._rt
        now, lease = self._now(), rt.config.service.lease
        woken = [sid for sid in woken if sid in rt.groups]
        try:
            taken = self._claims.claim(self.id, dict.fromkeys(woken, now), now, lease)
            # Only with a source that is due: its siblings due soon come along.
            siblings = {sib for sid in taken for sib in rt.groups[sid]} - set(taken)
            if siblings:
                taken += self._claims.claim(self.id, dict.fromkeys(siblings, now + SHARE_WINDOW), now, lease)
        except StorageError as exc:
            # Nothing was taken: the sources stay due and their jobs wake again.
            self._outage.failed(f"cannot take {len(woken)} due sources", exc)
            return
        self._outage.answered()
        if taken:
            await self._check(rt, taken)
        self._reschedule(sorted({sib for sid in woken for sib in rt.groups[sid]}))

    async def check(self, source_ids: Sequence[str]) -> list[CheckReport]:
        """Check sources this worker holds, one fetch per shared document; record and report."""
        return await self._check(self._rt, source_ids)

    async def close(self) -> None:
        """Record the checks waiting for their group, close the fetchers (what :meth:`run` does
        when it ends)."""
        self._writer.flush()
        for pool in {id(p): p for p in [*self._old_pools, self._rt.pool]}.values():
            await pool.aclose()

    async def _check(self, rt: _Runtime, source_ids: Sequence[str]) -> list[CheckReport]:
        batch = rt.pool.batch(rt.sources[sid] for sid in source_ids)
        self._inflight.update(source_ids)
        try:
            try:
                states = self._store.source_states(source_ids)
            except StorageError as exc:
                self._outage.failed("cannot read the sources to check", exc)
                return []
            results = await run_checks(
                source_ids,
                lambda sid: rt.sources[sid].url,
                lambda sid: self._check_one(rt, batch.for_source, sid, states.get(sid)),
                rt.pool.settings,
            )
        finally:
            self._inflight.difference_update(source_ids)
        return [report for report in results if report is not None]

    async def _check_one(
        self,
        rt: _Runtime,
        fetcher_for: Callable[[Source], Fetches],
        source_id: str,
        state: SourceState | None,
    ) -> CheckReport | None:
        source = build(rt.sources[source_id])
        try:
            report = await check_source(
                source,
                fetcher_for(source),
                self._store,
                self._now,
                policy=rt.policy,
                lease_owner=self.id,
                state=state,
                writer=self._writer,
            )
        except StorageError as exc:
            # A database problem is not the publisher's: nothing is recorded against the source,
            # which is due again when this worker's lease on it ends.
            self._outage.failed(f"{source_id}: the check could not be recorded, it is due again", exc)
            return None
        self._outage.answered()
        if report.changes:
            self._wake.set()
        if self._metrics is not None:
            self._metrics.observe_check(report)
        self._on_report(report)
        return report

    def _reschedule(self, source_ids: Sequence[str]) -> None:
        try:
            timings = self._claims.timings(source_ids)
        except StorageError as exc:
            self._outage.failed("cannot read the schedule", exc)
            return  # the jobs' own interval wakes them again
        now = self._now()
        for sid in source_ids:
            timing, source = timings.get(sid), self._rt.sources.get(sid)
            if timing is None or source is None:
                continue
            wake = timing.wake_at(now)
            if not timing.held_past_due(now):
                # No jitter when waiting for a lease to end: a dead worker's sources are taken
                # over the moment its lease runs out.
                wake = jittered(wake, self._rt.config.interval_of(source), self._rand)
            self._arm(sid, wake)

    def _beat(self, state: str = "running") -> None:
        now, lease = self._now(), self._rt.config.service.lease
        try:
            self._claims.renew(self.id, set(self._inflight), now, lease)
            self._claims.beat(self.id, self._started, now, state, len(self._inflight))
        except StorageError as exc:
            self._outage.failed("heartbeat", exc)
        else:
            self._outage.answered()

    def _sweep(self) -> None:
        rt, now = self._rt, self._now()
        try:
            if now - self._started > SWEEP_EVERY:
                self._claims.forget_workers(now - FORGET_WORKERS_AFTER)
            # Time before this worker started does not count: a service that was down for a
            # while has not watched its sources then, and they are about to be checked.
            healthstore.sweep_stale(
                self._store, rt.policy.intervals, now, rt.policy.router, not_before=self._started
            )
        except StorageError as exc:
            self._outage.failed("health sweep", exc)

    def _observe_delivery(self, delivery: Delivery, alerts: Sequence[Alert]) -> None:
        if self._metrics is not None:
            self._metrics.observe_delivery(delivery, alerts, self._now())

    async def _deliver_until(self, stop: asyncio.Event) -> None:
        await deliver_until(
            lambda: self._rt.deliverer,
            stop,
            self._wake,
            halt=self._halt,
            idle=self._delivery_idle,
            outage=self._outage,
        )

    async def _watch_reload(
        self, stop: asyncio.Event, reload: asyncio.Event, load: Callable[[], Config]
    ) -> None:
        while not stop.is_set():
            await reload.wait()
            reload.clear()
            try:
                config = load()
            except Exception as exc:  # a bad edit must not stop a running service
                log.error("configuration not reloaded, the running one stays in force: %s", exc)
                continue
            try:
                self.reload(config)
            except StorageError as exc:
                log.error("configuration not reloaded: %s", exc)

    async def _shutdown(self, delivering: asyncio.Task[None]) -> None:
        grace = self._rt.config.service.shutdown_grace.total_seconds()
        # Delivery (the pass in flight, then the last one) may use the whole grace, from now;
        # a message being sent when it ends is still finished, so stopping takes at most the
        # grace plus one message.
        deadline = asyncio.get_running_loop().call_later(grace, self._halt.set)
        try:
            await self._stop(delivering, grace)
        finally:
            deadline.cancel()

    async def _stop(self, delivering: asyncio.Task[None], grace: float) -> None:
        # Paused, not shut down: shutting down the scheduler cancels the checks in flight.
        self._scheduler.pause()
        self._beat("stopping")
        running = set(self._running)
        if running:
            log.info("stopping: waiting up to %g s for %d checks in flight", grace, len(self._inflight))
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()  # a check cancelled before it records writes nothing
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                log.warning("stopping: %d checks abandoned; other workers may take them now", len(late))
        self._scheduler.shutdown(wait=False)
        try:
            self._claims.release(self.id)
        except StorageError as exc:
            log.error("stopping: cannot release leases (they run out by themselves): %s", exc)
        await delivering  # ends with the pass in flight, by the end of the grace at the latest
        try:
            await asyncio.to_thread(self._rt.deliverer.deliver_due, self._halt)  # what the last checks queued
        except StorageError as exc:
            log.error("stopping: alerts left in the outbox for the next start: %s", exc)
        await self.close()
        self._beat("stopped")


async def run_once(
    config: Config,
    store: Store,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    now: Clock = utcnow,
) -> tuple[list[CheckReport], list[str]]:
    """One cycle: check every source that is due (within :data:`ONCE_SLACK`) and not held by a
    running worker. Returns the reports and the ids of the sources left alone."""
    service = Service(config, store, transport=transport, clock=RealTime(now))
    start = now()
    horizons = {source.id: start + ONCE_SLACK for source in config.sources}
    taken = store.claims.claim(service.id, horizons, start, config.service.lease)
    try:
        reports = await service.check(taken)
    finally:
        store.claims.release(service.id)
        await service.close()
    held = set(taken)
    return reports, [sid for sid in horizons if sid not in held]


async def deliver_until(
    deliverer: Callable[[], Deliverer],
    stop: asyncio.Event,
    wake: asyncio.Event,
    tick: float = DELIVERY_TICK,
    *,
    halt: threading.Event | None = None,
    idle: asyncio.Event | None = None,
    outage: DatabaseOutage | None = None,
) -> None:
    """Deliver due alerts every ``tick`` seconds or when woken, until ``stop`` is set.

    ``stop`` lets the pass in flight finish; ``halt`` (set from any thread) cuts it short:
    each channel finishes the message it is sending and gives back the rest (see
    :meth:`Deliverer.deliver_due`). A database error, or any other, is logged and tried again
    at the next tick; it never ends the loop (``outage``, when given, hears of database errors
    and of passes that went through). ``idle``, when given, is set while no pass runs."""
    idle = idle or asyncio.Event()
    outage = outage or DatabaseOutage()
    while not stop.is_set():
        idle.clear()
        wake.clear()
        try:
            await asyncio.to_thread(deliverer().deliver_due, halt)
        except StorageError as exc:
            outage.failed("alert delivery", exc)
        except Exception:  # the loop must outlive any one pass; the alerts stay in the outbox
            log.exception("alert delivery: unexpected error; trying again at the next tick")
        else:
            outage.answered()
        idle.set()
        waits = [asyncio.ensure_future(event.wait()) for event in (stop, wake)]
        await asyncio.wait(waits, timeout=tick, return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()
