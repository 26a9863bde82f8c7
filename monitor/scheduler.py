"""``monitor run``: one APScheduler interval job per source and the alert delivery loop, until
asked to stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.alerts.delivery import Deliverer
from monitor.config import Config
from monitor.errors import StorageError
from monitor.pipeline import CheckReport, Clock, FetcherPool, Policy, check_source, utcnow
from monitor.sources import Source, build
from monitor.store import Store

log = logging.getLogger(__name__)

# How often the outbox is looked at: retries and digests fall due between checks.
DELIVERY_TICK = 5.0
# Spread the start of sources sharing one interval so a host does not see them all at once.
MAX_JITTER = timedelta(seconds=30)


def jitter_for(interval: timedelta) -> int:
    return int(min(MAX_JITTER, interval / 10).total_seconds())


async def run_forever(
    config: Config,
    store: Store,
    stop: asyncio.Event,
    on_report: Callable[[CheckReport], None],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    now: Clock = utcnow,
) -> None:
    """Check every source now, then at its interval, until ``stop`` is set.

    One run of a source at a time (``max_instances=1``); runs missed while the process was
    busy are coalesced into one. With alert channels configured, due alerts are delivered every
    ``DELIVERY_TICK`` and at once after a check that found changes.
    """
    policy = Policy.from_config(config)
    pool = FetcherPool(config, transport)
    scheduler = AsyncIOScheduler(timezone="UTC")
    wake = asyncio.Event()
    for source_config in config.sources:
        source = build(source_config)

        async def job(source: Source = source) -> None:
            fetcher = pool.for_source(source)
            report = await check_source(source, fetcher, store, now, policy=policy)
            if report.changes:
                wake.set()
            on_report(report)

        interval = config.interval_of(source_config)
        scheduler.add_job(
            job,
            "interval",
            seconds=interval.total_seconds(),
            jitter=jitter_for(interval),
            id=source_config.id,
            max_instances=1,
            coalesce=True,
            next_run_time=now(),
        )
    scheduler.start()
    delivering = asyncio.create_task(deliver_until(Deliverer(config, store, now=now), stop, wake))
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await delivering  # lets a message in flight finish and be recorded
        await pool.aclose()


async def deliver_until(
    deliverer: Deliverer, stop: asyncio.Event, wake: asyncio.Event, tick: float = DELIVERY_TICK
) -> None:
    """Deliver due alerts every ``tick`` seconds or when woken, until ``stop`` is set.

    A database error, or any other, is logged and tried again at the next tick; it never ends
    the loop."""
    while not stop.is_set():
        wake.clear()
        try:
            await asyncio.to_thread(deliverer.deliver_due)
        except StorageError as exc:
            log.error("alert delivery: %s", exc)
        except Exception:  # the loop must outlive any one pass; the alerts stay in the outbox
            log.exception("alert delivery: unexpected error; trying again at the next tick")
        waits = [asyncio.ensure_future(event.wait()) for event in (stop, wake)]
        await asyncio.wait(waits, timeout=tick, return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()
