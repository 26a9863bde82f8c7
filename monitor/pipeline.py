"""The wiring for one check: fetch -> parse -> snapshot -> diff -> classify -> store.

A failing source never stops the others: every way a check can fail ends as a recorded check
with an outcome and a reason (see :class:`~monitor.models.Outcome`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import httpx

from monitor.classify import classify
from monitor.config import Config
from monitor.diff import diff_records
from monitor.errors import BlockedError, FetchError, ParseError
from monitor.http import Fetcher, HttpSettings, build_client
from monitor.models import Change, Fetched, Outcome, Record
from monitor.sources import Source, build
from monitor.store import ChangeWrite, CheckWrite, SnapshotWrite, Store, StoredSnapshot, body_hash

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CheckReport:
    """What one check did, for the CLI, logs and the scheduler."""

    source_id: str
    outcome: Outcome
    started_at: datetime
    duration_ms: int
    http_status: int | None = None
    error: str | None = None
    changes: tuple[Change, ...] = ()
    new_keys: tuple[str, ...] = ()


def http_settings(config: Config) -> HttpSettings:
    defaults = config.defaults
    settings = HttpSettings(
        timeout=defaults.timeout.total_seconds(),
        max_body=defaults.max_body,
        concurrency=defaults.concurrency,
        per_host=defaults.per_host,
    )
    return replace(settings, user_agent=defaults.user_agent) if defaults.user_agent else settings


def make_fetcher(config: Config, transport: httpx.AsyncBaseTransport | None = None) -> Fetcher:
    settings = http_settings(config)
    return Fetcher(build_client(settings, transport=transport), settings)


async def check_sources(
    config: Config,
    store: Store,
    source_ids: Sequence[str] = (),
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    now: Clock = utcnow,
) -> list[CheckReport]:
    """Check the named sources (all when none is named) once, concurrently; reports in config order."""
    sources = (
        [build(config.source(i)) for i in source_ids] if source_ids else [build(s) for s in config.sources]
    )
    fetcher = make_fetcher(config, transport)
    try:
        return list(await asyncio.gather(*(check_source(s, fetcher, store, now) for s in sources)))
    finally:
        await fetcher.aclose()


async def check_source(source: Source, fetcher: Fetcher, store: Store, now: Clock = utcnow) -> CheckReport:
    """Check one source once and record the result. Never raises for source problems."""
    started, clock = now(), time.perf_counter()
    state = store.source_state(source.id)
    try:
        fetched = await fetcher.fetch(source.config.url, validators=state.validators, source_id=source.id)
    except FetchError as exc:
        outcome = Outcome.BLOCKED if isinstance(exc, BlockedError) else Outcome.FAILED
        return _save(store, source, started, clock, outcome, status=exc.status, error=exc.message)
    if fetched.not_modified:
        return _save(store, source, started, clock, Outcome.NOT_MODIFIED, fetched=fetched)
    try:
        records = _parse(source, fetched)
    except ParseError as exc:
        return _save(store, source, started, clock, Outcome.PARSE_FAILED, fetched=fetched, error=exc.message)
    snapshots, changes = compare(store.latest_snapshots(source.id), records)
    outcome = Outcome.CHANGED if changes else Outcome.NEW if snapshots else Outcome.UNCHANGED
    return _save(
        store, source, started, clock, outcome, fetched=fetched, snapshots=snapshots, changes=changes
    )


def _parse(source: Source, fetched: Fetched) -> list[Record]:
    try:
        records = source.parse(fetched.body, content_type=fetched.content_type, url=fetched.final_url)
    except ParseError:
        raise
    except Exception as exc:
        # A payload that trips a parser bug must not stop the run; it is a failed parse.
        log.exception("%s: unexpected error while parsing %s", source.id, fetched.final_url)
        raise ParseError(f"unexpected {type(exc).__name__} while parsing: {exc}") from exc
    keys = [record.key for record in records]
    if not records:
        raise ParseError("no record found in the payload")
    if len(set(keys)) != len(keys):
        raise ParseError(f"the payload yields duplicate record keys: {sorted(keys)}")
    return records


def compare(
    previous: dict[str, StoredSnapshot], records: Iterable[Record]
) -> tuple[tuple[SnapshotWrite, ...], tuple[ChangeWrite, ...]]:
    """Pure: the snapshots to write and the changes they make against the latest stored ones."""
    snapshots: list[SnapshotWrite] = []
    changes: list[ChangeWrite] = []
    for record in records:
        before = previous.get(record.key)
        if before is None:
            snapshots.append(SnapshotWrite(record.key, record))
            continue
        diff = diff_records(before.record, record)
        if diff is None:
            continue
        change_class, reasons = classify(diff)
        change = Change(record.key, change_class, reasons, diff.unified, diff.level_before, diff.level_after)
        snapshots.append(SnapshotWrite(record.key, record))
        changes.append(ChangeWrite(record.key, change))
    return tuple(snapshots), tuple(changes)


def _save(
    store: Store,
    source: Source,
    started: datetime,
    clock: float,
    outcome: Outcome,
    *,
    fetched: Fetched | None = None,
    status: int | None = None,
    error: str | None = None,
    snapshots: tuple[SnapshotWrite, ...] = (),
    changes: tuple[ChangeWrite, ...] = (),
) -> CheckReport:
    duration_ms = round((time.perf_counter() - clock) * 1000)
    body = fetched.body if fetched and not fetched.not_modified else None
    store.save_check(
        CheckWrite(
            source_id=source.id,
            started_at=started,
            duration_ms=duration_ms,
            http_status=fetched.status if fetched else status,
            size=len(fetched.body) if fetched else 0,
            outcome=outcome,
            error=error,
            validators=fetched.validators if fetched and outcome.ok else None,
            body=body,
            body_hash=body_hash(body) if body is not None else None,
            snapshots=snapshots,
            changes=changes,
        )
    )
    return CheckReport(
        source_id=source.id,
        outcome=outcome,
        started_at=started,
        duration_ms=duration_ms,
        http_status=fetched.status if fetched else status,
        error=error,
        changes=tuple(c.change for c in changes),
        new_keys=tuple(s.key for s in snapshots if s.key not in {c.key for c in changes}),
    )
