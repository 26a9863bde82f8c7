"""``monitor run``: one APScheduler interval job per source, until asked to stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.config import Config
from monitor.pipeline import CheckReport, Clock, FetcherPool, Policy, check_source, utcnow
from monitor.sources import Source, build
from monitor.store import Store

log = logging.getLogger(__name__)

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
    busy are coalesced into one.
    """
    policy = Policy.from_config(config)
    pool = FetcherPool(config, transport)
    scheduler = AsyncIOScheduler(timezone="UTC")
    for source_config in config.sources:
        source = build(source_config)

        async def job(source: Source = source) -> None:
            fetcher = pool.for_source(source)
            on_report(await check_source(source, fetcher, store, now, policy=policy))

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
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await pool.aclose()
