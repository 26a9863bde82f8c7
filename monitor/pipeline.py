"""The wiring for one check: fetch -> parse -> snapshot -> diff -> classify -> store.

A failing source never stops the others: every way a check can fail ends as a recorded check
with an outcome and a reason (see :class:`~monitor.models.Outcome`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import ValidationError

from monitor import __version__
from monitor.alerts.routing import Router
from monitor.checkwriter import CheckWriter
from monitor.classify import classify, text_supports_level_change
from monitor.completeness import incomplete
from monitor.config import Config, SourceConfig
from monitor.diff import RecordDiff, diff_records, publication_time
from monitor.dispatch import run_by_host
from monitor.errors import BlockedError, ConfigError, FetchError, ParseError
from monitor.health import Verdict, after_check
from monitor.http import Fetcher, HttpSettings, RetryLaterError, build_client, host_key, pacer_for
from monitor.models import Change, ChangeClass, Fetched, Outcome, Record, Validators
from monitor.rules import RuleSet, load_rules
from monitor.schedule import next_check
from monitor.sharedfetch import SharedFetches
from monitor.sources import Source, build
from monitor.sources.base import Fetches
from monitor.store import (
    ChangeWrite,
    CheckWrite,
    Hold,
    SnapshotWrite,
    SourceState,
    Store,
    StoredSnapshot,
    body_hash,
    content_hash,
)

if TYPE_CHECKING:
    from monitor.browser import BrowserFetcher

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")
R = TypeVar("R")


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
    consecutive_failures: int = 0
    next_check_at: datetime | None = None
    bytes: int = 0  # received


@dataclass(frozen=True)
class Comparison:
    """What one check's records mean against the stored state: what to write, hold and release."""

    snapshots: tuple[SnapshotWrite, ...] = ()
    changes: tuple[ChangeWrite, ...] = ()
    holds: tuple[Hold, ...] = ()
    releases: tuple[str, ...] = ()


def http_settings(config: Config) -> HttpSettings:
    defaults = config.defaults
    settings = HttpSettings(
        timeout=defaults.timeout.total_seconds(),
        max_body=defaults.max_body,
        concurrency=defaults.concurrency,
        per_host=defaults.per_host,
        host_spacing=defaults.host_spacing.total_seconds(),
        private_addresses=defaults.private_addresses,
    )
    return replace(settings, user_agent=defaults.user_agent) if defaults.user_agent else settings


class FetcherPool:
    """The fetchers of one run: the shared HTTP client always, a browser once a source needs one.

    Both keep one pacer: requests to one host start ``defaults.host_spacing`` apart, and a
    host's Retry-After holds back every source on that host."""

    def __init__(self, config: Config, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._settings = http_settings(config)
        self._pacer = pacer_for(self._settings)
        self._http = Fetcher(build_client(self._settings, transport=transport), self._settings, self._pacer)
        self._browser: BrowserFetcher | None = None

    @property
    def settings(self) -> HttpSettings:
        """The limits every fetch of the pool keeps."""
        return self._settings

    def for_source(self, source: Source) -> Fetches:
        if source.config.fetcher == "http":
            return self._http
        if self._browser is None:
            from monitor.browser import BrowserFetcher

            self._browser = BrowserFetcher(
                self._settings, executable=self._config.defaults.browser_path, pacer=self._pacer
            )
        return _WaitingBrowser(self._browser, source.config.wait_for)

    def batch(self, sources: Iterable[SourceConfig] = ()) -> Batch:
        """Fetchers for one batch of checks: a document several sources read is fetched once.
        ``sources``: the batch's sources, so that each page is let go once they all have it."""
        return Batch(self, sources)

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._browser is not None:
            await self._browser.aclose()


class Batch:
    """The fetchers of one batch of checks (one cycle): each URL is requested once per fetcher."""

    def __init__(self, pool: FetcherPool, sources: Iterable[SourceConfig] = ()) -> None:
        self._pool = pool
        self._shared: dict[tuple[str, str | None], SharedFetches] = {}
        self._expected: dict[tuple[str, str | None], Counter[str]] = {}
        for source in sources:
            self._expected.setdefault((source.fetcher, source.wait_for), Counter())[source.url] += 1

    def for_source(self, source: Source) -> Fetches:
        key = (source.config.fetcher, source.config.wait_for)
        if key not in self._shared:
            self._shared[key] = SharedFetches(self._pool.for_source(source), self._expected.get(key))
        return self._shared[key]

    @property
    def requests(self) -> int:
        """How many requests the batch really made."""
        return sum(shared.requests for shared in self._shared.values())


@dataclass(frozen=True)
class _WaitingBrowser:
    """The browser fetcher bound to one source's page-load condition."""

    browser: BrowserFetcher
    wait_for: str | None

    async def fetch(
        self, url: str, *, validators: Validators | None = None, source_id: str | None = None
    ) -> Fetched:
        return await self.browser.fetch(
            url, validators=validators, source_id=source_id, wait_for=self.wait_for
        )


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
    pool = FetcherPool(config, transport)
    try:
        policy = Policy.from_config(config)
        batch = pool.batch(s.config for s in sources)
        states = store.source_states([s.id for s in sources])
        writer = CheckWriter(store, largest=group_size(pool.settings))

        def check(s: Source) -> Awaitable[CheckReport]:
            fetcher = batch.for_source(s)
            return check_source(s, fetcher, store, now, policy=policy, state=states.get(s.id), writer=writer)

        try:
            return await run_checks(sources, lambda s: s.config.url, check, pool.settings)
        finally:
            writer.flush()
    finally:
        await pool.aclose()


async def run_checks(
    items: Sequence[T],
    url_of: Callable[[T], str],
    check: Callable[[T], Awaitable[R]],
    settings: HttpSettings,
) -> list[R]:
    """``check`` every item, a few at a time per host (see :mod:`monitor.dispatch`): twice the
    requests the fetcher lets run at once, so that a check's own work (parsing, recording)
    overlaps the next one's request. Results in the order of ``items``."""
    return await run_by_host(
        items,
        lambda item: _host_of(url_of(item)),
        check,
        per_host=2 * settings.per_host,
        total=2 * settings.concurrency,
    )


def group_size(settings: HttpSettings) -> int:
    """Checks recorded together at most: half of those :func:`run_checks` keeps in flight, so
    that a group is written as soon as that many wait, not only when the window ends."""
    return settings.concurrency


def _host_of(url: str) -> str:
    try:
        return host_key(url)
    except FetchError:
        return url  # the check itself reports the URL as invalid


@dataclass(frozen=True)
class Policy:
    """How checks judge what they find: the phrase rules, when a source counts as broken, which
    alert channels hear of a change, and when each source is due again."""

    broken_after: int = 3
    rules: RuleSet | None = None  # None: the built-in rules
    router: Router | None = None  # None: no alerts are queued
    intervals: Mapping[str, timedelta] = field(default_factory=dict)  # absent: not scheduled
    max_backoff: timedelta = timedelta(hours=6)

    @classmethod
    def from_config(cls, config: Config) -> Policy:
        """Raises RulesError (a ConfigError) when a configured rule file is invalid."""
        rules = load_rules(config.rule_paths()) if config.rules else None
        return cls(
            config.defaults.failures_before_broken,
            rules,
            Router.from_config(config),
            {source.id: config.interval_of(source) for source in config.sources},
            config.defaults.max_backoff,
        )

    def due_after(
        self, source_id: str, started: datetime, finished: datetime, failures: int, retry_after: float | None
    ) -> datetime | None:
        """When the source is due again after a check; None for a source without an interval."""
        interval = self.intervals.get(source_id)
        if interval is None:
            return None
        return next_check(
            started=started,
            finished=finished,
            interval=interval,
            failures=failures,
            max_backoff=self.max_backoff,
            retry_after=retry_after,
        )


async def check_source(
    source: Source,
    fetcher: Fetches,
    store: Store,
    now: Clock = utcnow,
    *,
    policy: Policy = Policy(),
    lease_owner: str | None = None,
    state: SourceState | None = None,
    writer: CheckWriter | None = None,
) -> CheckReport:
    """Check one source once and record the result, with when it is due again (see
    :mod:`monitor.schedule`) and, for ``lease_owner``, the end of that worker's lease on it.
    Never raises for source problems.

    When the check is the ``policy.broken_after``-th failure in a row, a warning says the source is
    broken (once per streak; ``monitor sources`` shows it until a check succeeds). The check's
    health verdict (:func:`monitor.health.after_check`) is saved with it: a source that becomes
    unhealthy, or works again, is alerted once to the channels that hear of its health.

    ``state``: the source's state, when the caller read it already (with those of other
    sources); ``writer``: records the check together with others finishing about then."""
    started, clock = now(), time.perf_counter()
    if state is None:
        state = store.source_state(source.id)
    result = await _attempt(source, fetcher, store, state, policy.rules)
    failures = 0 if result.outcome.ok else state.consecutive_failures + 1
    duration_ms = round((time.perf_counter() - clock) * 1000)
    due = policy.due_after(source.id, started, now(), failures, result.retry_after)
    verdict = after_check(result.outcome, failures, policy.broken_after, result.error)
    report = await _save(
        writer or _Direct(store),
        source,
        result,
        started=started,
        duration_ms=duration_ms,
        failures=failures,
        router=policy.router,
        next_check_at=due,
        lease_owner=lease_owner,
        health=verdict,
    )
    if failures == policy.broken_after:
        log.warning("%s: source broken: %d consecutive failed checks (%s)", source.id, failures, result.error)
    return report


@dataclass(frozen=True)
class _Result:
    outcome: Outcome
    fetched: Fetched | None = None
    found: Comparison = Comparison()
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the publisher asked us to wait (429/503)


async def _attempt(
    source: Source, fetcher: Fetches, store: Store, state: SourceState, rules: RuleSet | None
) -> _Result:
    try:
        fetched = await source.fetch(fetcher, state.validators)
    except FetchError as exc:
        outcome = Outcome.BLOCKED if isinstance(exc, BlockedError) else Outcome.FAILED
        retry_after = exc.retry_after if isinstance(exc, RetryLaterError) else None
        return _Result(outcome, status=exc.status, error=exc.message, retry_after=retry_after)
    if fetched.not_modified:
        return _Result(Outcome.NOT_MODIFIED, fetched)
    cut_short = incomplete(fetched.body, fetched.status, lambda: store.latest_body(source.id))
    if cut_short:
        # Nothing of it is kept: the next answer is compared with the last whole one.
        return _Result(Outcome.FAILED, status=fetched.status, error=cut_short)
    if _same_body_read_the_same_way(source, fetched, state) and not store.pending(source.id):
        # The records are those already stored: nothing to parse or compare. (With a change
        # held for confirmation, the body is read again: seeing it again confirms the change.)
        return _Result(Outcome.UNCHANGED, fetched)
    try:
        records = _parse(source, fetched)
    except ParseError as exc:
        return _Result(Outcome.PARSE_FAILED, fetched, error=exc.message)
    found = compare(store.latest_snapshots(source.id), records, store.pending(source.id), rules)
    if found.holds:
        log.info("%s: level change held until the next check confirms it: %s", source.id, found.holds)
    return _Result(_outcome(found), fetched, found)


def parse_key(config: SourceConfig) -> str:
    """What a body is read with: the kind, its options and countries, and this version of the
    monitor (its parsers). A body read before with the same key gives the same records."""
    described = {
        "kind": config.kind,
        "options": config.options,
        "countries": config.countries,
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def _same_body_read_the_same_way(source: Source, fetched: Fetched, state: SourceState) -> bool:
    return (
        state.body_hash is not None
        and state.parse_key == parse_key(source.config)
        and body_hash(fetched.body) == state.body_hash
    )


def _outcome(found: Comparison) -> Outcome:
    if found.changes:
        return Outcome.CHANGED
    if found.snapshots:
        return Outcome.NEW
    return Outcome.HELD if found.holds else Outcome.UNCHANGED


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


def parse_file(
    kind: str,
    path: Path,
    *,
    countries: Sequence[str] = (),
    url: str | None = None,
    content_type: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[Record]:
    """Parse a saved payload with a kind (and its ``options``), as a source of that kind would.
    Raises MonitorError."""
    try:
        config = SourceConfig.model_validate(
            {
                "id": "parse",
                "kind": kind,
                "url": url or "https://localhost/",
                "countries": countries,
                "options": dict(options or {}),
            }
        )
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"invalid --kind, --country or --url: {message}") from None
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read {path}: {exc.strerror}") from None
    content_type = content_type or mimetypes.guess_type(path.name)[0]
    fetched = Fetched(str(path), url or path.resolve().as_uri(), 200, body, content_type, Validators(), 0.0)
    try:
        return _parse(build(config), fetched)
    except ParseError as exc:
        raise ParseError(f"{path}: {exc.message}") from None


def compare(
    previous: Mapping[str, StoredSnapshot],
    records: Iterable[Record],
    pending: Mapping[str, str] | None = None,
    rules: RuleSet | None = None,
) -> Comparison:
    """Pure: the snapshots to write and the changes they make against the latest stored ones.

    Glitch guard: a level change that the text does not support (and that is not critical) is
    held, not written, until the next check shows the same record again; if the record goes
    back to the stored one first, the held change is dropped.
    """
    pending = pending or {}
    snapshots: list[SnapshotWrite] = []
    changes: list[ChangeWrite] = []
    holds: list[Hold] = []
    releases: list[str] = []
    for record in records:
        before = previous.get(record.key)
        if before is None:
            snapshots.append(SnapshotWrite(record.key, record))
            continue
        diff = diff_records(before.record, record)
        if diff is None:
            releases += [record.key] if record.key in pending else []
            continue
        change_class, reasons = classify(diff, rules)
        digest = content_hash(record)
        if _needs_confirmation(diff, change_class, rules) and pending.get(record.key) != digest:
            holds.append(Hold(record.key, digest))
            continue
        releases += [record.key] if record.key in pending else []
        change = Change(
            record.key,
            change_class,
            reasons,
            diff.unified,
            diff.level_before,
            diff.level_after,
            publication_time(before.record, record),
        )
        snapshots.append(SnapshotWrite(record.key, record))
        changes.append(ChangeWrite(record.key, change))
    return Comparison(tuple(snapshots), tuple(changes), tuple(holds), tuple(releases))


def _needs_confirmation(diff: RecordDiff, change_class: ChangeClass, rules: RuleSet | None) -> bool:
    before, after = diff.level_before, diff.level_after
    if before is None or after is None or before == after or change_class is ChangeClass.CRITICAL:
        return False
    return not text_supports_level_change(diff, rules)


class _Direct:
    """Records each check in its own transaction, at once."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def save(self, check: CheckWrite, router: Router | None = None) -> int:
        return self._store.save_check(check, router)


async def _save(
    writer: CheckWriter | _Direct,
    source: Source,
    result: _Result,
    *,
    started: datetime,
    duration_ms: int,
    failures: int,
    router: Router | None,
    next_check_at: datetime | None = None,
    lease_owner: str | None = None,
    health: Verdict | None = None,
) -> CheckReport:
    fetched = result.fetched
    body = fetched.body if fetched and not fetched.not_modified else None
    status = fetched.status if fetched else result.status
    await writer.save(
        CheckWrite(
            source_id=source.id,
            started_at=started,
            duration_ms=duration_ms,
            http_status=status,
            size=len(fetched.body) if fetched else 0,
            outcome=result.outcome,
            error=result.error,
            validators=fetched.validators if fetched and result.outcome.ok else None,
            body=body,
            body_hash=body_hash(body) if body is not None else None,
            parse_key=parse_key(source.config) if body is not None else None,
            snapshots=result.found.snapshots,
            changes=result.found.changes,
            holds=result.found.holds,
            releases=result.found.releases,
            next_check_at=next_check_at,
            lease_owner=lease_owner,
            health=health,
        ),
        router,
    )
    changed_keys = {c.key for c in result.found.changes}
    return CheckReport(
        source_id=source.id,
        outcome=result.outcome,
        started_at=started,
        duration_ms=duration_ms,
        http_status=status,
        error=result.error,
        changes=tuple(c.change for c in result.found.changes),
        new_keys=tuple(s.key for s in result.found.snapshots if s.key not in changed_keys),
        consecutive_failures=failures,
        next_check_at=next_check_at,
        bytes=len(fetched.body) if fetched else 0,
    )
