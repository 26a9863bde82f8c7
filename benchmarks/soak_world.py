"""The world a simulated soak runs against: publishers and an alert receiver on 127.0.0.1.

    python benchmarks/soak_world.py --sources 500 --days 7 --seed 1 --clock FILE   # started by soak_sim.py

Everything here lives in simulated time, read at each request from a shared clock file that the
soak's driver writes (:class:`SharedClock`). What it serves:

* the sources of :func:`plan`: a mix of kinds in their publishers' formats. The ministry and
  carrier kinds (``uk-fcdo``, ``us-state``, ``fr-diplomatie``, ``de-aa``, ``rss``, ``msc``,
  ``cma-cgm``) serve the files of ``seeds/mali-2025-11`` (what those publishers served over the
  Mali crisis of autumn 2025) and switch to another of their kind's files at random moments, so
  levels rise and fall and notices come and go; ``html`` pages are 60 KB advisory pages from
  ``bench_fixtures.py`` that get a new dated event, a later "Last updated" date and sometimes a
  new level at random moments. Each publisher is its own ``host:port``; answers carry a strong
  ETag, Last-Modified (when the current version started) and Date in simulated time, and 304 to
  a conditional request that still matches; ``html`` pages are gzipped when asked for.
* faults, from a seeded random generator: per host, episodes at random moments (5xx bursts, 429
  with Retry-After until the episode ends, connection resets, answers that never come, block
  pages, garbage bodies), and per request, rarely, a slow answer, a reset, a truncated body,
  garbage, a 5xx or an answer that never comes (see :data:`EPISODES`, :data:`ONE_OFF`);
* a webhook receiver (``POST /hook``) that is down for a few random stretches and the last
  :data:`LAST_OUTAGE` before ``recovered_at`` (the start of the last simulated day), fails at
  random until then, and accepts everything after;
* ``GET /_stats`` on the receiver's port: what was answered, as JSON.

It prints one JSON line (``{"ports": {host: port}, "receiver": port, "recovered_at": ISO}``) once
listening, and runs
until its standard input is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import functools
import gzip
import hashlib
import json
import mmap
import random
import resource
import socket
import struct
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fixtures as pages

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "mali-2025-11"
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; the soak's simulated time starts here

# The mix of kinds, by weight: mostly generic pages, then ministries, then carriers.
MIX: tuple[tuple[str, int], ...] = (
    ("html", 76),
    ("uk-fcdo", 4),
    ("fr-diplomatie", 4),
    ("rss", 4),
    ("us-state", 3),
    ("de-aa", 3),
    ("msc", 3),
    ("cma-cgm", 3),
)
CARRIERS = frozenset({"msc", "cma-cgm"})
PAGES_PER_HOST = 10  # html pages served by one host
EMBASSY_HOSTS = 4  # rss feeds are spread over this many hosts
# Mean time between two versions of a source, by kind (a Poisson process per source).
MEAN_CHANGE_GAP = {
    "html": timedelta(hours=48),
    "carrier": timedelta(hours=48),
    "ministry": timedelta(hours=36),
}
HTML_TYPE = "text/html; charset=utf-8"


# --- the shared clock ---------------------------------------------------------------------------


class SharedClock:
    """Simulated time in an 8-byte file mapped by both processes: the driver sets it, the world
    reads it (POSIX seconds as a double)."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        if create:
            path.write_bytes(bytes(8))
        self._file = path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), 8)

    def set(self, moment: datetime) -> None:
        struct.pack_into("<d", self._map, 0, moment.timestamp())

    def now(self) -> datetime:
        return datetime.fromtimestamp(struct.unpack_from("<d", self._map, 0)[0], UTC)

    def close(self) -> None:
        self._map.close()
        self._file.close()


# --- the plan: which sources, where ---------------------------------------------------------------


@dataclass(frozen=True)
class PlannedSource:
    """A source as the configuration names it and the world serves it."""

    id: str
    kind: str
    host: str  # the publisher: one host:port each
    path: str
    content_type: str
    countries: tuple[str, ...]
    options: dict[str, Any]
    index: int  # among the sources of its kind, from 1

    @property
    def family(self) -> str:
        if self.kind == "html":
            return "html"
        return "carrier" if self.kind in CARRIERS else "ministry"


def counts(n: int) -> dict[str, int]:
    """How many sources of each kind among ``n``: by the weights of :data:`MIX` (largest
    remainders), at least one of each kind when ``n`` allows."""
    total = sum(weight for _, weight in MIX)
    exact = {kind: n * weight / total for kind, weight in MIX}
    result = {kind: int(value) for kind, value in exact.items()}
    for kind in sorted(exact, key=lambda k: result[k] - exact[k])[: n - sum(result.values())]:
        result[kind] += 1
    for kind, _ in reversed(MIX):
        if result[kind] == 0 and result["html"] > 1:
            result[kind], result["html"] = 1, result["html"] - 1
    return result


def plan(n: int) -> list[PlannedSource]:
    """The ``n`` sources, in a fixed order; the same ``n`` always gives the same plan."""
    seed_sources = {source.kind: source for source in _timeline().sources}
    planned: list[PlannedSource] = []
    for kind, count in counts(n).items():
        for index in range(1, count + 1):
            if kind == "html":
                host, path = (
                    f"pages-{(index - 1) // PAGES_PER_HOST}",
                    f"/advice/{pages.slug_of(index, count)}",
                )
                planned.append(
                    PlannedSource(
                        f"page-{index:04d}", kind, host, path, HTML_TYPE, (), {"select": "main"}, index
                    )
                )
                continue
            seeded = seed_sources[kind]
            host = f"embassy-{index % EMBASSY_HOSTS}" if kind == "rss" else kind
            planned.append(
                PlannedSource(
                    id=f"{kind}-{index:03d}",
                    kind=kind,
                    host=host,
                    path=f"/{kind}/{index}{_suffix(seeded.url)}",
                    content_type=seeded.content_type,
                    countries=seeded.countries,
                    options=dict(seeded.options),
                    index=index,
                )
            )
    return planned


def _suffix(url: str) -> str:
    # Some kinds read the URL (a feed, a JSON endpoint); keep the publisher's file name.
    last = url.rstrip("/").rsplit("/", 1)[-1]
    return f"/{last}" if "." in last else "/"


@functools.cache
def _timeline() -> Any:
    from monitor.replay.timeline import load_timeline

    return load_timeline(SEED)


def seed_files(kind: str) -> list[bytes]:
    """The files the seed's source of ``kind`` served, oldest first."""
    source = next(s for s in _timeline().sources if s.kind == kind)
    return [(SEED / source.id / served.file).read_bytes() for served in source.snapshots]


# --- content in time ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Versions:
    """When a source starts serving each version: ``times[i]`` (POSIX seconds) -> ``numbers[i]``."""

    times: tuple[float, ...]
    numbers: tuple[int, ...]

    def at(self, moment: float) -> tuple[int, float]:
        """The version served at ``moment`` and when it started."""
        position = max(bisect.bisect_right(self.times, moment) - 1, 0)
        return self.numbers[position], self.times[position]


def versions(source: PlannedSource, seed: int, start: datetime, end: datetime, choices: int) -> Versions:
    """Random moments between ``start`` and ``end`` at which ``source`` changes. An ``html`` page
    moves to its next version; other kinds to another of their ``choices`` files at random."""
    rng = random.Random(f"versions:{seed}:{source.id}")
    gap = MEAN_CHANGE_GAP[source.family].total_seconds()
    # Sources start on different versions so that their first snapshots differ.
    current = 0 if source.kind == "html" else rng.randrange(choices)
    times, numbers = [start.timestamp() - 86_400], [current]
    moment = start.timestamp() + rng.expovariate(1 / gap)
    while moment < end.timestamp():
        current = (
            current + 1 if source.kind == "html" else rng.choice([c for c in range(choices) if c != current])
        )
        times.append(moment)
        numbers.append(current)
        moment += rng.expovariate(1 / gap)
    return Versions(tuple(times), tuple(numbers))


class HtmlPages:
    """The ``html`` sources' pages: version v of a page is ``bench_fixtures``' page after v of its
    mutations. Only each page's current version is kept."""

    def __init__(self, seed: int, count: int) -> None:
        self._seed, self._count = seed, count
        self._site = pages._site(seed, count)
        self._current: dict[int, tuple[int, pages._CountryState, bytes]] = {}

    def body(self, index: int, version: int) -> bytes:
        slug = pages.slug_of(index, self._count)
        number, state, body = self._current.get(index) or (-1, pages._initial_state(self._seed, slug), b"")
        if number == version:
            return body
        places = pages._body(self._seed, index, pages.country_name(slug), 0).places
        for step in range(max(number, 0) + 1, version + 1):
            state = pages._mutate_state(state, places, pages._rng("mutate", self._seed, step, slug))
        body = pages._page(self._site, index, state).encode()
        self._current[index] = (version, state, body)
        return body


# --- faults -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Episode:
    """A stretch of simulated time during which a host answers every request with ``fault``."""

    fault: str
    start: float
    end: float


# Per host: fault -> (episodes per simulated day, shortest and longest, in minutes).
EPISODES: dict[str, tuple[float, float, float]] = {
    "5xx": (0.4, 10, 90),
    "429": (0.3, 2, 30),  # Retry-After: until the episode ends
    "reset": (0.15, 5, 45),
    "hang": (0.03, 3, 10),
    "block": (0.1, 30, 180),
    "garbage": (0.1, 10, 60),
}
# Per request, outside episodes: fault -> probability.
ONE_OFF: dict[str, float] = {
    "slow": 0.002,
    "reset": 0.001,
    "truncated": 0.001,
    "garbage": 0.0005,
    "5xx": 0.002,
    "hang": 0.0001,
}
SLOW = (0.02, 0.3)  # seconds of real time a slow answer waits


def episodes(host: str, seed: int, start: datetime, end: datetime) -> list[Episode]:
    """The host's fault episodes between ``start`` and ``end``, by start time; they do not overlap."""
    rng = random.Random(f"episodes:{seed}:{host}")
    days = (end - start).total_seconds() / 86_400
    drawn: list[Episode] = []
    for fault, (per_day, shortest, longest) in EPISODES.items():
        for _ in range(_poisson(rng, per_day * days)):
            begin = start.timestamp() + rng.uniform(0, days * 86_400)
            drawn.append(Episode(fault, begin, begin + 60 * rng.uniform(shortest, longest)))
    kept: list[Episode] = []
    for episode in sorted(drawn, key=lambda e: e.start):
        if not kept or episode.start >= kept[-1].end:
            kept.append(episode)
    return kept


def _poisson(rng: random.Random, mean: float) -> int:
    count, moment = 0, rng.expovariate(1.0)
    while moment < mean:
        count, moment = count + 1, moment + rng.expovariate(1.0)
    return count


def active(schedule: list[Episode], moment: float) -> Episode | None:
    position = bisect.bisect_right([e.start for e in schedule], moment) - 1
    if position >= 0 and schedule[position].end > moment:
        return schedule[position]
    return None


# --- answers ------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What to do with a request: send ``status``/``headers``/``body``, after waiting ``delay``
    real seconds; or ``action`` ``reset`` (RST), ``hang`` (no answer, then close), ``truncated``
    (half the body, then close)."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    action: str = "send"
    delay: float = 0.0
    label: str = "200"


BLOCK_PAGE = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    b'<div id="cf-chl-widget">Checking if the site connection is secure</div></body></html>'
)


def fault_answer(fault: str, rng: random.Random, retry_after: float, hang: float) -> Answer:
    """The answer standing for ``fault``."""
    if fault == "5xx":
        status = rng.choice((500, 502, 503, 504))
        return Answer(status, [("Content-Type", "text/plain")], b"upstream trouble\n", label=str(status))
    if fault == "429":
        wait = str(max(1, round(retry_after)))
        return Answer(
            429, [("Retry-After", wait), ("Content-Type", "text/plain")], b"slow down\n", label="429"
        )
    if fault == "block":
        status = rng.choice((403, 503))
        return Answer(status, [("Content-Type", HTML_TYPE)], BLOCK_PAGE, label=f"block {status}")
    if fault == "garbage":
        junk = rng.randbytes(rng.randint(200, 4000))
        return Answer(200, [("Content-Type", "application/octet-stream")], junk, label="garbage")
    if fault == "hang":
        return Answer(action="hang", delay=hang, label="hang")
    return Answer(action="reset", label="reset")


class World:
    """The publishers and the receiver, answering in the simulated time of ``clock``."""

    def __init__(self, n: int, days: float, seed: int, clock: Callable[[], datetime], hang: float) -> None:
        self.sources = plan(n)
        self._by_path = {source.path: source for source in self.sources}
        self._clock, self._hang = clock, hang
        self._rng = random.Random(f"requests:{seed}")
        end = START + timedelta(days=days)
        self.recovered_at = START + timedelta(days=max(days - 1, days / 2))
        horizon = end + timedelta(days=1)  # the soak may run past the end while the outbox drains
        files = {kind: seed_files(kind) for kind, _ in MIX if kind != "html"}
        self._files = files
        self._versions = {
            s.id: versions(s, seed, START, horizon, len(files.get(s.kind, ()))) for s in self.sources
        }
        self._episodes = {
            host: episodes(host, seed, START, horizon) for host in {s.host for s in self.sources}
        }
        self._outages = outages(seed, START, self.recovered_at)
        self._html = HtmlPages(seed, sum(1 for s in self.sources if s.kind == "html"))
        self._encoded: dict[str, tuple[int, bytes, bytes, str]] = {}  # id -> version, body, gzip, etag
        self.answers: Counter[str] = Counter()
        self.posts: Counter[str] = Counter()

    @property
    def hosts(self) -> list[str]:
        return sorted(self._episodes)

    def answer(self, path: str, headers: dict[str, str]) -> Answer:
        """The answer to a GET of ``path`` now."""
        source = self._by_path.get(path)
        now = self._clock().timestamp()
        if source is None:
            answer = Answer(404, [("Content-Type", "text/plain")], b"not found\n", label="404")
        else:
            answer = self._answer(source, now, headers)
        answer.headers.append(("Date", _http_date(now)))
        self.answers[answer.label] += 1
        return answer

    def _answer(self, source: PlannedSource, now: float, headers: dict[str, str]) -> Answer:
        episode = active(self._episodes[source.host], now)
        if episode is not None:
            return fault_answer(episode.fault, self._rng, episode.end - now, self._hang)
        fault = self._one_off()
        if fault is None:
            return self._content(source, now, headers)
        if fault == "slow":
            answer = self._content(source, now, headers)
            answer.delay, answer.label = self._rng.uniform(*SLOW), f"slow {answer.label}"
            return answer
        if fault == "truncated":
            # The whole answer, cut short: a body whose end never comes.
            answer = self._content(source, now, {})
            answer.action, answer.label = "truncated", "truncated"
            return answer
        return fault_answer(fault, self._rng, 0, self._hang)

    def _one_off(self) -> str | None:
        roll = self._rng.random()
        for fault, probability in ONE_OFF.items():
            if roll < probability:
                return fault
            roll -= probability
        return None

    def _content(self, source: PlannedSource, now: float, headers: dict[str, str]) -> Answer:
        number, since = self._versions[source.id].at(now)
        _, body, zipped, etag = self._encoding(source, number)
        validators = [("ETag", etag), ("Last-Modified", _http_date(since))]
        if _not_modified(headers, etag, since):
            return Answer(304, validators, label="304")
        answer = Answer(200, [*validators, ("Content-Type", source.content_type)], body, label="200")
        if zipped and "gzip" in headers.get("accept-encoding", ""):
            answer.body = zipped
            answer.headers.append(("Content-Encoding", "gzip"))
        return answer

    def _encoding(self, source: PlannedSource, number: int) -> tuple[int, bytes, bytes, str]:
        cached = self._encoded.get(source.id)
        if cached is not None and cached[0] == number:
            return cached
        if source.kind == "html":
            body = self._html.body(source.index, number)
            zipped = gzip.compress(body, compresslevel=5, mtime=0)
        else:
            body, zipped = self._files[source.kind][number], b""
        entry = (number, body, zipped, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
        self._encoded[source.id] = entry
        return entry

    def post(self) -> int:
        """The receiver's answer to an alert, now."""
        now = self._clock()
        if any(begin <= now < end for begin, end in self._outages):
            status = 503
        elif now < self.recovered_at and self._rng.random() < FLAKY:
            status = 500
        else:
            status = 200
        self.posts[str(status)] += 1
        return status

    def stats(self) -> dict[str, Any]:
        return {
            "answers": dict(self.answers),
            "posts": dict(self.posts),
            "recovered_at": self.recovered_at.isoformat(),
            "outages": [[b.isoformat(), e.isoformat()] for b, e in self._outages],
            "episodes": Counter(e.fault for hosts in self._episodes.values() for e in hosts),
            "cpu_seconds": (usage := resource.getrusage(resource.RUSAGE_SELF)).ru_utime + usage.ru_stime,
        }


FLAKY = 0.15  # outside its outages and until it recovers, the receiver fails this often
OUTAGE_MINUTES = (15, 120)  # each outage of the receiver; alerts retry for about 6 hours
LAST_OUTAGE = timedelta(hours=2)  # down until it recovers: alerts are pending when it does


def outages(seed: int, start: datetime, recovered: datetime) -> list[tuple[datetime, datetime]]:
    """The receiver's outages: two per simulated day before ``recovered``, at random moments, and
    the last :data:`LAST_OUTAGE` before it."""
    rng = random.Random(f"outages:{seed}")
    span = (recovered - start).total_seconds()
    found: list[tuple[datetime, datetime]] = []
    for _ in range(max(1, round(2 * span / 86_400))):
        length = timedelta(minutes=rng.uniform(*OUTAGE_MINUTES))
        begin = start + timedelta(seconds=rng.uniform(0, max(span - length.total_seconds(), 0)))
        found.append((begin, begin + length))
    found.append((recovered - LAST_OUTAGE, recovered))
    return sorted(found)


def _http_date(seconds: float) -> str:
    return format_datetime(datetime.fromtimestamp(int(seconds), UTC), usegmt=True)


def _not_modified(headers: dict[str, str], etag: str, since: float) -> bool:
    """RFC 9110: If-None-Match when sent, else If-Modified-Since."""
    if "if-none-match" in headers:
        return etag in {tag.strip().removeprefix("W/") for tag in headers["if-none-match"].split(",")}
    value = headers.get("if-modified-since")
    if not value:
        return False
    try:
        return int(since) <= parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return False


# --- the HTTP/1.1 server ------------------------------------------------------------------------

IDLE = 30.0  # real seconds an idle keep-alive connection stays open
REASONS = {
    200: "OK",
    304: "Not Modified",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

Handle = Callable[[str, str, dict[str, str], bytes], Awaitable[Answer]]


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handle: Handle) -> None:
    """One connection: requests one after the other (keep-alive) until the client or a fault
    ends it."""
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            method, path, headers = _parse(head)
            body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
            answer = await handle(method, path, headers, body)
            if not await _send(writer, answer, method) or headers.get("connection") == "close":
                return
    except ConnectionError:
        return
    finally:
        if not writer.is_closing():
            writer.close()


def _parse(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = [*lines[0].split(" "), "", ""][:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


async def _send(writer: asyncio.StreamWriter, answer: Answer, method: str) -> bool:
    """Write ``answer``; False when the connection must end."""
    if answer.delay:
        await asyncio.sleep(answer.delay)
    if answer.action == "reset":
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False
    if answer.action == "hang":
        return False
    head = [f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, 'Status')}"]
    head += [f"{name}: {value}" for name, value in answer.headers]
    if answer.status != 304:
        head.append(f"Content-Length: {len(answer.body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if answer.action == "truncated" or method != "HEAD":
        writer.write(answer.body[: len(answer.body) // 2] if answer.action == "truncated" else answer.body)
    await writer.drain()
    return answer.action != "truncated"


async def run_world(world: World, stop: asyncio.Event, ready: Callable[[dict[str, Any]], None]) -> None:
    """Serve every host of ``world`` and the receiver until ``stop`` is set."""

    async def publisher(method: str, path: str, headers: dict[str, str], _body: bytes) -> Answer:
        if method not in ("GET", "HEAD"):
            return Answer(405, [("Content-Type", "text/plain")], b"method not allowed\n", label="405")
        return world.answer(path, headers)

    async def receiver(method: str, path: str, _headers: dict[str, str], _body: bytes) -> Answer:
        if method == "GET" and path == "/_stats":
            data = json.dumps(world.stats(), default=str).encode()
            return Answer(200, [("Content-Type", "application/json")], data)
        return Answer(world.post(), [("Content-Type", "text/plain")], b"")

    servers, ports = [], {}
    for host in world.hosts:
        server = await asyncio.start_server(lambda r, w: serve(r, w, publisher), "127.0.0.1", 0)
        servers.append(server)
        ports[host] = server.sockets[0].getsockname()[1]
    hook = await asyncio.start_server(lambda r, w: serve(r, w, receiver), "127.0.0.1", 0)
    servers.append(hook)
    receiving = hook.sockets[0].getsockname()[1]
    ready({"ports": ports, "receiver": receiving, "recovered_at": world.recovered_at.isoformat()})
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sources", type=int, default=500)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clock", type=Path, required=True)
    parser.add_argument(
        "--hang", type=float, default=3.0, help="real seconds an answer that never comes holds"
    )
    args = parser.parse_args(argv)
    clock = SharedClock(args.clock)
    world = World(args.sources, args.days, args.seed, clock.now, args.hang)

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wait_for_eof() -> None:
            sys.stdin.buffer.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_eof, daemon=True).start()

        def ready(ports: dict[str, Any]) -> None:
            print(json.dumps(ports), flush=True)

        await run_world(world, stop, ready)

    asyncio.run(main_loop())


if __name__ == "__main__":
    main()
