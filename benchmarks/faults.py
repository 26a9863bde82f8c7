"""The fault suite: every way a publisher's server can misbehave, one scenario per fault.

    python benchmarks/faults.py                       # every fault, SQLite; prints the table
    python benchmarks/faults.py --only gzip-bomb      # one fault
    python benchmarks/faults.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test

Each scenario runs the real check (``monitor.pipeline.check_sources``: fetch, parse, snapshot,
diff, classify, store, alert outbox) against a misbehaving HTTP server on 127.0.0.1, on a source
of the Mali seed (``seeds/mali-2025-11``) in its publisher's own format:

1. the source's page as it was (the seed's version A) is checked: the baseline snapshot;
2. the fault is served (for a burst, several checks in a row);
3. the publisher's next real version (B) is served and checked.

The table says, for each fault, the outcome recorded for the faulty answer(s), its reason, the
changes and the change alerts produced by it (both must be 0), the source-health notices it
raised (a ``blocked`` or ``parse_failed`` check marks the source unhealthy at once, by design: it
is a message to the operator, not a risk alert), and whether step 3 recorded exactly the change
that A -> B records without any fault in between (the next good answer is compared with the last
good snapshot). The alert channel takes every class (``min_class: noise``), so any change the
fault produced would queue an alert. Exit code 1 when a scenario does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import re
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import brotli  # type: ignore[import-untyped]
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratchdb import scratch_database

from monitor.config import Config, loads
from monitor.database import ChangeRow, SnapshotRow
from monitor.models import ChangeClass, Outcome
from monitor.pipeline import CheckReport, check_sources
from monitor.replay.timeline import SeedSource, load_timeline
from monitor.store import Store
from tests.support.httpserver import LocalServer

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "mali-2025-11"
TIMEOUT = 1.0  # seconds: the sources' defaults.timeout in every scenario
MAX_BODY = 1_000_000  # bytes: the sources' defaults.max_body in every scenario
BOMB = 50_000_000  # bytes a compression bomb expands to
RETRY_AFTER = 600  # seconds asked for by the 429 scenario

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class Pages:
    """What a source's publisher served: version A, the next real version B, and its headers."""

    source: SeedSource
    before: bytes
    after: bytes
    expected: ChangeClass

    @property
    def content_type(self) -> str:
        return self.source.content_type


@dataclass(frozen=True)
class Fault:
    """One misbehaviour: ``answer(pages, n)`` answers the n-th faulty request (from 0)."""

    name: str
    source: str  # the seed source it is served for
    what: str
    answer: Callable[[Pages, int], Handler]
    outcomes: frozenset[Outcome]  # what the faulty checks may be recorded as
    reason: str = ""  # a regular expression the recorded reason matches (failed outcomes)
    checks: int = 1  # faulty checks in a row
    start: int = 0  # version A is the source's start-th file in the seed (B the next change after it)


@dataclass
class Row:
    """What one scenario did."""

    fault: Fault
    outcomes: list[Outcome] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    changes: int = 0
    change_alerts: int = 0
    health_notices: int = 0
    snapshots_kept: bool = False
    next_good: str = ""  # the class recorded by the next good answer
    next_good_matches: bool = False  # ... and the change is the one A -> B gives without a fault
    retry_after_kept: bool = True
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return not self.problems


# Answers ------------------------------------------------------------------------------------


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    length: int | None = None,
) -> None:
    """A whole answer; ``length`` overrides the Content-Length sent (None: the body's)."""
    handler.send_response_only(status)
    handler.send_header("Date", handler.date_time_string())
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    handler.end_headers()
    handler.wfile.write(body)


def page(body: bytes, content_type: str) -> Handler:
    return lambda handler: send(handler, 200, body, {"Content-Type": content_type})


def delayed(pages: Pages, _: int) -> Handler:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(TIMEOUT * 3)
        send(handler, 200, pages.before, {"Content-Type": pages.content_type})

    return answer


def start_answer(handler: BaseHTTPRequestHandler, pages: Pages) -> None:
    """The status line and headers of version A, whose body the caller sends (or not)."""
    handler.send_response_only(200)
    handler.send_header("Content-Type", pages.content_type)
    handler.send_header("Content-Length", str(len(pages.before)))
    handler.end_headers()


def trickle(pages: Pages, _: int) -> Handler:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        start_answer(handler, pages)
        deadline = time.monotonic() + TIMEOUT * 4
        for byte in pages.before:
            if time.monotonic() > deadline:
                break
            handler.wfile.write(bytes([byte]))
            time.sleep(0.05)
        handler.close_connection = True

    return answer


def reset_mid_body(pages: Pages, _: int) -> Handler:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        start_answer(handler, pages)
        handler.wfile.write(pages.before[: len(pages.before) // 2])
        # SO_LINGER 0: closing sends a TCP reset instead of a clean end.
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True

    return answer


def server_errors(_: Pages, n: int) -> Handler:
    status = (500, 502, 503, 504)[n % 4]
    return lambda handler: send(handler, status, b"<html><body>Server error</body></html>")


def too_many_requests(_: Pages, __: int) -> Handler:
    return lambda handler: send(handler, 429, b"slow down", {"Retry-After": str(RETRY_AFTER)})


def redirect(location: str) -> Callable[[Pages, int], Handler]:
    def answer(_: Pages, __: int) -> Handler:
        return lambda handler: send(handler, 302, b"", {"Location": location})

    return answer


def huge(pages: Pages, _: int) -> Handler:
    filler = b"<!-- " + b"x" * (MAX_BODY * 2) + b" -->"
    return page(pages.before.replace(b"</body>", filler + b"</body>"), pages.content_type)


def huge_chunked(pages: Pages, _: int) -> Handler:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response_only(200)
        handler.send_header("Content-Type", pages.content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"x" * 65536
        for _ in range(MAX_BODY * 3 // len(chunk)):
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        handler.wfile.write(b"0\r\n\r\n")

    return answer


@cache
def gzip_bomb() -> bytes:
    return gzip.compress(b"\0" * BOMB, compresslevel=9)


@cache
def brotli_bomb() -> bytes:
    return bytes(brotli.compress(b"\0" * BOMB, quality=5))


def bomb(coding: str) -> Callable[[Pages, int], Handler]:
    def answer(pages: Pages, _: int) -> Handler:
        data = gzip_bomb() if coding == "gzip" else brotli_bomb()
        headers = {"Content-Type": pages.content_type, "Content-Encoding": coding}
        return lambda handler: send(handler, 200, data, headers)

    return answer


def relabelled(
    content_type: str, encode: Callable[[bytes], bytes] = lambda b: b
) -> Callable[[Pages, int], Handler]:
    """Version A again, its bytes passed through ``encode``, under another Content-Type. A line
    break is added at the end, so that the bytes differ from the stored ones and are read again."""

    def answer(pages: Pages, _: int) -> Handler:
        return page(encode(pages.before) + b"\n", content_type)

    return answer


def as_windows_1252(body: bytes) -> bytes:
    return body.decode("utf-8").encode("cp1252")


def stray_bytes(body: bytes) -> bytes:
    """Two accented letters of the advice's text sent as latin-1 bytes: invalid UTF-8 in a UTF-8 page."""
    return body.replace("Publié".encode(), b"Publi\xe9", 1).replace("début".encode(), b"d\xe9but", 1)


def served(
    transform: Callable[[Pages], bytes], content_type: str | None = None
) -> Callable[[Pages, int], Handler]:
    def answer(pages: Pages, _: int) -> Handler:
        return page(transform(pages), content_type or pages.content_type)

    return answer


def truncated(pages: Pages) -> bytes:
    return pages.before[: len(pages.before) * 6 // 10]


def malformed_html(pages: Pages) -> bytes:
    """Tag soup: every closing div, p and li dropped, stray closing tags added."""
    soup = re.sub(rb"</(div|p|li)>", b"", pages.before)
    return soup.replace(b"<body>", b"<body></table></td></span>", 1)


def malformed_json(pages: Pages) -> bytes:
    return pages.before.replace(b'":', b'"=', 3)


def mismatched_xml(pages: Pages) -> bytes:
    return pages.before.replace(b"</title>", b"</titel>", 2)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title></channel></rss>"""


def billion_laughs(pages: Pages) -> bytes:
    """Version A with the entity bomb declared and used in its first title."""
    head, _, rest = pages.before.partition(b"?>")
    doctype = BILLION_LAUGHS.split(b"?>", 1)[1].split(b"<rss", 1)[0]
    return head + b"?>" + doctype + rest.replace(b"<title>", b"<title>&lol9;", 1)


def empty(_: Pages) -> bytes:
    return b""


CHALLENGE = b"""<!DOCTYPE html><html><head><title>Just a moment...</title></head>
<body><div id="cf-chl-widget">Checking if the site connection is secure</div></body></html>"""


def without_level(pages: Pages) -> bytes:
    """France Diplomatie's page with its vigilance zones gone: the page is there, the level is not."""
    text = pages.before.decode()
    text = re.sub(
        r"<h3 class=\"spip\">Zones de vigilance</h3>.*?(?=<h3|</div>\s*<div class=\"tab_content)",
        "",
        text,
        flags=re.S,
    )
    text = re.sub(
        r"(?i)formellement déconseillée|déconseillée sauf raison impérative|vigilance renforcée"
        r"|rouge|orange|jaune|vert",
        "",
        text,
    )
    return text.encode()


def maintenance(_: Pages) -> bytes:
    return (
        b"<!DOCTYPE html><html><head><title>Maintenance</title></head>"
        b"<body><p>Site en maintenance.</p></body></html>"
    )


def listing_without_advisories(pages: Pages) -> bytes:
    """MSC's listing page with its list of advisories gone (an empty result from its CMS)."""
    text = pages.before.decode()
    return re.sub(r'(?s)<li class="newsroom-card">.*</li>', "", text).encode()


FAULTS: tuple[Fault, ...] = (
    Fault(
        "timeout",
        "fr-diplomatie",
        "no answer within the timeout",
        delayed,
        frozenset({Outcome.FAILED}),
        r"timed out",
    ),
    Fault(
        "trickle",
        "fr-diplomatie",
        "body sent a byte every 50 ms",
        trickle,
        frozenset({Outcome.FAILED}),
        r"timed out",
    ),
    Fault(
        "reset",
        "fr-diplomatie",
        "connection reset half-way through the body",
        reset_mid_body,
        frozenset({Outcome.FAILED}),
        r"incomplete|reset|connection",
    ),
    Fault(
        "5xx-burst",
        "fr-diplomatie",
        "500, 502, 503, 504 in a row",
        server_errors,
        frozenset({Outcome.FAILED}),
        r"HTTP 50[0234]",
        checks=4,
    ),
    Fault(
        "429",
        "fr-diplomatie",
        f"429 with Retry-After: {RETRY_AFTER}",
        too_many_requests,
        frozenset({Outcome.FAILED}),
        r"HTTP 429",
    ),
    Fault(
        "redirect-loop",
        "fr-diplomatie",
        "302 to a page that redirects back",
        redirect("/loop"),
        frozenset({Outcome.FAILED}),
        r"too many redirects",
    ),
    Fault(
        "redirect-file",
        "fr-diplomatie",
        "302 to file:///etc/passwd",
        redirect("file:///etc/passwd"),
        frozenset({Outcome.FAILED}),
        r"not http or https",
    ),
    Fault(
        "redirect-ftp",
        "fr-diplomatie",
        "302 to ftp://",
        redirect("ftp://ftp.example.org/mali.html"),
        frozenset({Outcome.FAILED}),
        r"not http or https",
    ),
    Fault(
        "huge-body",
        "fr-diplomatie",
        "3x the size cap, with Content-Length",
        huge,
        frozenset({Outcome.FAILED}),
        r"larger than",
    ),
    Fault(
        "huge-chunked",
        "fr-diplomatie",
        "3x the size cap, chunked, no length",
        huge_chunked,
        frozenset({Outcome.FAILED}),
        r"larger than",
    ),
    Fault(
        "gzip-bomb",
        "fr-diplomatie",
        f"{BOMB // 1_000_000} MB of zeros, gzip",
        bomb("gzip"),
        frozenset({Outcome.FAILED}),
        r"larger than",
    ),
    Fault(
        "brotli-bomb",
        "fr-diplomatie",
        f"{BOMB // 1_000_000} MB of zeros, brotli",
        bomb("br"),
        frozenset({Outcome.FAILED}),
        r"larger than",
    ),
    Fault(
        "no-charset",
        "fr-diplomatie",
        "version A, Content-Type without charset",
        relabelled("text/html"),
        frozenset({Outcome.UNCHANGED}),
    ),
    Fault(
        "wrong-charset",
        "fr-diplomatie",
        "version A (UTF-8) labelled iso-8859-1",
        relabelled("text/html; charset=iso-8859-1"),
        frozenset({Outcome.UNCHANGED}),
    ),
    Fault(
        "legacy-as-utf8",
        "fr-diplomatie",
        "version A in windows-1252 labelled utf-8",
        relabelled("text/html; charset=utf-8", as_windows_1252),
        frozenset({Outcome.UNCHANGED}),
    ),
    Fault(
        "invalid-utf8",
        "fr-diplomatie",
        "version A with two bytes that are not UTF-8",
        relabelled("text/html; charset=utf-8", stray_bytes),
        frozenset({Outcome.UNCHANGED}),
    ),
    Fault(
        "truncated-html",
        "fr-diplomatie",
        "the first 60 % of version A, complete framing",
        served(truncated),
        frozenset({Outcome.FAILED}),
        r"incomplete",
    ),
    Fault(
        "malformed-html",
        "fr-diplomatie",
        "version A without its closing div/p/li tags",
        served(malformed_html),
        frozenset({Outcome.UNCHANGED, Outcome.PARSE_FAILED}),
    ),
    Fault(
        "truncated-json",
        "uk-fcdo",
        "the first 60 % of version A",
        served(truncated),
        frozenset({Outcome.FAILED}),
        r"incomplete",
    ),
    Fault(
        "malformed-json",
        "uk-fcdo",
        'version A with "=" for ":"',
        served(malformed_json),
        frozenset({Outcome.PARSE_FAILED}),
        r"JSON",
    ),
    Fault(
        "json-wrong-shape",
        "uk-fcdo",
        'valid JSON, not an item: {"error": ...}',
        served(lambda _: b'{"error": "maintenance"}'),
        frozenset({Outcome.PARSE_FAILED}),
    ),
    Fault(
        "truncated-xml",
        "us-state",
        "the first 60 % of version A",
        served(truncated),
        frozenset({Outcome.FAILED}),
        r"incomplete",
    ),
    Fault(
        "malformed-xml",
        "us-state",
        "version A with mismatched tags",
        served(mismatched_xml),
        frozenset({Outcome.UNCHANGED, Outcome.PARSE_FAILED}),
        r"XML|feed|RSS",
    ),
    Fault(
        "billion-laughs",
        "us-state",
        "version A with a nested entity bomb",
        served(billion_laughs),
        frozenset({Outcome.PARSE_FAILED}),
        r"entit|DTD|XML",
    ),
    Fault(
        "empty-200",
        "fr-diplomatie",
        "200 with an empty body",
        served(empty),
        frozenset({Outcome.FAILED}),
        r"empty",
    ),
    Fault(
        "bot-challenge",
        "fr-diplomatie",
        "Cloudflare challenge page, 200",
        served(lambda _: CHALLENGE),
        frozenset({Outcome.BLOCKED}),
        r"challenge",
    ),
    Fault(
        "bot-challenge-403",
        "fr-diplomatie",
        "Cloudflare challenge page, 403",
        lambda _p, _n: lambda h: send(h, 403, CHALLENGE, {"Content-Type": "text/html"}),
        frozenset({Outcome.BLOCKED}),
        r"challenge",
    ),
    Fault(
        "maintenance-200",
        "fr-diplomatie",
        "a maintenance page served with 200",
        served(maintenance),
        frozenset({Outcome.PARSE_FAILED}),
        r"level|zone|vigilance",
    ),
    Fault(
        "level-missing",
        "fr-diplomatie",
        "version A without its vigilance zones",
        served(without_level),
        frozenset({Outcome.PARSE_FAILED}),
        r"level|zone|vigilance",
    ),
    Fault(
        "listing-empty",
        "msc",
        "the advisories listing without its advisories",
        served(listing_without_advisories),
        frozenset({Outcome.PARSE_FAILED}),
        r"advisor|notice|listing",
    ),
    Fault(
        "listing-empty-after-suspension",
        "msc",
        "the same, while a Mali suspension is listed",
        served(listing_without_advisories),
        frozenset({Outcome.PARSE_FAILED}),
        r"advisor|notice|listing",
        start=3,
    ),
)


# Running ------------------------------------------------------------------------------------


def seed_pages(source_id: str, start: int) -> Pages:
    """A seed source's ``start``-th version and its next real change (the next with a class)."""
    [source] = [s for s in load_timeline(SEED).sources if s.id == source_id]
    first = source.snapshots[start]
    nxt = next(s for s in source.snapshots[start + 1 :] if s.expect not in (None, "unchanged", "noise"))
    folder = SEED / source.id
    return Pages(
        source, (folder / first.file).read_bytes(), (folder / nxt.file).read_bytes(), ChangeClass(nxt.expect)
    )


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:8]


def config_for(pages: Pages, server: LocalServer) -> Config:
    source = pages.source
    text = f"""
countries: [ML]
defaults: {{timeout: {TIMEOUT:g}s, max_body: {MAX_BODY}, host_spacing: 0, interval: 15m}}
sources:
  - id: {source.id}
    kind: {source.kind}
    url: "{server.url(source.path)}"
    countries: [{", ".join(source.countries)}]
alerts:
  - {{name: everything, url: "json://127.0.0.1:9/", min_class: noise}}
"""
    return loads(text, path=Path("faults.yaml"), environ={})


def check(config: Config, store: Store) -> CheckReport:
    store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), datetime.now(UTC))
    [report] = asyncio.run(check_sources(config, store))
    return report


@dataclass(frozen=True)
class Counts:
    snapshots: int
    changes: int
    change_alerts: int
    health_alerts: int

    @classmethod
    def of(cls, store: Store) -> Counts:
        with store.engine.connect() as conn:
            snapshots = conn.execute(sa.select(sa.func.count()).select_from(SnapshotRow)).scalar_one()
            changes = conn.execute(sa.select(sa.func.count()).select_from(ChangeRow)).scalar_one()
        alerts = store.outbox.alerts()
        health = sum(1 for a in alerts if a.health_event_id is not None)
        return cls(snapshots, changes, len(alerts) - health, health)


def last_change(store: Store) -> tuple[str, tuple[str, ...], str]:
    [change] = store.changes()[-1:]
    return change.change_class, change.reasons, change.diff


@contextmanager
def scenario_store(database: str | None, workdir: Path, name: str) -> Iterator[Store]:
    """A new, empty database for one scenario: a SQLite file, or a scratch PostgreSQL database."""
    with scratch_database(database, workdir, name) as url, Store.open(url) as store:
        yield store


def control(pages: Pages, database: str | None, workdir: Path) -> tuple[str, tuple[str, ...], str]:
    """The change A -> B records with no fault in between."""
    with (
        LocalServer() as server,
        scenario_store(database, workdir, f"control-{pages.source.id}-{sha(pages.before)}") as store,
    ):
        config = config_for(pages, server)
        server.route_handler(pages.source.path, page(pages.before, pages.content_type))
        check(config, store)
        server.route_handler(pages.source.path, page(pages.after, pages.content_type))
        check(config, store)
        return last_change(store)


def run_fault(
    fault: Fault,
    pages: Pages,
    expected: tuple[str, tuple[str, ...], str],
    database: str | None,
    workdir: Path,
) -> Row:
    row = Row(fault)
    started = time.perf_counter()
    with LocalServer() as server, scenario_store(database, workdir, fault.name) as store:
        config = config_for(pages, server)
        path = pages.source.path
        server.route_handler(path, page(pages.before, pages.content_type))
        baseline = check(config, store)
        if baseline.outcome is not Outcome.NEW:
            row.problems.append(f"version A was recorded as {baseline.outcome.value}: {baseline.error}")
        before = Counts.of(store)
        snapshots_before = store.latest_snapshots(pages.source.id)
        server.route_handler("/loop", lambda h: send(h, 302, b"", {"Location": path}))
        for n in range(fault.checks):
            server.route_handler(path, fault.answer(pages, n))
            report = check(config, store)
            row.outcomes.append(report.outcome)
            row.reasons.append(report.error or "")
            if fault.name == "429" and (
                report.next_check_at is None
                or (report.next_check_at - report.started_at).total_seconds() < RETRY_AFTER
            ):
                row.retry_after_kept = False
        after = Counts.of(store)
        row.changes = after.changes - before.changes
        row.change_alerts = after.change_alerts - before.change_alerts
        row.health_notices = after.health_alerts - before.health_alerts
        row.snapshots_kept = (
            after.snapshots == before.snapshots
            and store.latest_snapshots(pages.source.id) == snapshots_before
        )
        server.route_handler(path, page(pages.after, pages.content_type))
        good = check(config, store)
        found = last_change(store) if good.outcome is Outcome.CHANGED else None
        row.next_good = found[0] if found else good.outcome.value
        baseline_ids = {snapshot.id for snapshot in snapshots_before.values()}
        row.next_good_matches = found == expected and store.changes()[-1].previous_snapshot_id in baseline_ids
    row.seconds = time.perf_counter() - started
    row.problems += judge(row)
    return row


def judge(row: Row) -> list[str]:
    fault = row.fault
    problems = [
        f"outcome {o.value} not in {sorted(x.value for x in fault.outcomes)}"
        for o in row.outcomes
        if o not in fault.outcomes
    ]
    for outcome, reason in zip(row.outcomes, row.reasons, strict=True):
        if not outcome.ok and not reason:
            problems.append(f"{outcome.value} without a reason")
        if not outcome.ok and fault.reason and not re.search(fault.reason, reason, re.IGNORECASE):
            problems.append(f"reason {reason!r} does not match {fault.reason!r}")
    if row.changes or row.change_alerts:
        problems.append(f"{row.changes} changes and {row.change_alerts} change alerts from the fault")
    if not row.snapshots_kept:
        problems.append("the stored snapshots moved")
    if not row.next_good_matches:
        problems.append(f"the next good answer recorded {row.next_good}, not the change A -> B")
    if not row.retry_after_kept:
        problems.append("Retry-After not honoured in the next due time")
    return problems


def run(faults: Sequence[Fault], database: str | None = None) -> list[Row]:
    pages = {(f.source, f.start): seed_pages(f.source, f.start) for f in faults}
    with tempfile.TemporaryDirectory(prefix="monitor-faults-") as tmp:
        workdir = Path(tmp)
        controls = {key: control(pair, database, workdir) for key, pair in pages.items()}
        return [
            run_fault(f, pages[f.source, f.start], controls[f.source, f.start], database, workdir)
            for f in faults
        ]


def table(rows: Sequence[Row]) -> str:
    header = ("fault", "source", "outcome", "reason", "changes", "alerts", "health", "next good", "held")
    lines = [header]
    for row in rows:
        outcomes = ", ".join(sorted({o.value for o in row.outcomes}))
        reason = next((r for r in row.reasons if r), "-")
        lines.append(
            (
                row.fault.name,
                row.fault.source,
                outcomes,
                reason if len(reason) <= 60 else reason[:57] + "...",
                str(row.changes),
                str(row.change_alerts),
                str(row.health_notices),
                row.next_good + (" (A->B)" if row.next_good_matches else " (WRONG)"),
                "yes" if row.held else "NO: " + "; ".join(row.problems),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", action="append", default=[], metavar="FAULT", help="run only this fault (repeatable)"
    )
    parser.add_argument(
        "--database", help="a PostgreSQL URL; each scenario empties it (default: SQLite files)"
    )
    args = parser.parse_args(argv)
    names = {f.name for f in FAULTS}
    unknown = [n for n in args.only if n not in names]
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    faults = [f for f in FAULTS if not args.only or f.name in args.only]
    started = time.perf_counter()
    rows = run(faults, args.database)
    print(table(rows))
    held = sum(row.held for row in rows)
    changes, alerts = sum(r.changes for r in rows), sum(r.change_alerts for r in rows)
    elapsed = time.perf_counter() - started
    print(
        f"\n{held} of {len(rows)} faults held; {changes} changes and {alerts} change alerts "
        f"from faults; {elapsed:.1f} s"
    )
    return 0 if held == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
