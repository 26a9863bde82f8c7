"""Fuzzing the monitor's other readers of outside input: body decoding, Content-Encoding, the
HTTP answer helpers, the configuration, phrase-rule files, seed timelines, ``monitor classify
--batch`` files and the report's query parameters. Each returns or raises its documented
error (ParseError, ConfigError, FetchError, InputError, ValueError...), quickly.

The inputs that crashed a reader once are kept as regression tests at the end.
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
import shutil
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from wsgiref.util import setup_testing_defaults

import brotli  # type: ignore[import-untyped]
import httpx
import pytest
import webencodings  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from monitor import rules
from monitor.classify import read_batch
from monitor.config import loads
from monitor.contentcoding import BodyTooLargeError, BoundedDecoder, ContentDecodingError
from monitor.decoding import decode_body
from monitor.errors import ConfigError, FetchError, MonitorError
from monitor.http import RetryLaterError, host_key, looks_blocked, status_error
from monitor.replay.timeline import TIMELINE, load_timeline
from monitor.report.history import History
from monitor.report.web import make_app
from monitor.schedule import next_check
from tests.support.fuzz import ROOT, fuzz_settings, mutated

# --- body decoding -----------------------------------------------------------------------------

# The labels browsers know; "replacement" and "x-user-defined" have no Python codec (reported).
_BROKEN_CODECS = ("replacement", "x-user-defined")
LABELS = sorted(label for label, name in webencodings.LABELS.items() if name not in _BROKEN_CODECS)
BROKEN_LABELS = sorted(label for label, name in webencodings.LABELS.items() if name in _BROKEN_CODECS)
PAGES = [
    path.read_bytes()
    for path in sorted((ROOT / "tests" / "fixtures" / "kinds").glob("*/*/input.*"))
    if path.suffix in (".html", ".xml", ".txt")
]
_CONTENT_TYPES = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.builds(lambda mime, label: f"{mime}; charset={label}", st.sampled_from(("text/html", "text/json")),
              st.sampled_from(LABELS)),
    st.builds(lambda label: f'text/html; charset="{label}"; charset=utf-8', st.sampled_from(LABELS)),
)  # fmt: skip


@st.composite
def _declared(draw: st.DrawFn) -> bytes:
    """A page with a meta charset or an XML declaration of a label browsers know."""
    label = draw(st.sampled_from(LABELS)).encode()
    declaration = draw(
        st.sampled_from(
            (
                b'<meta charset="%s">',
                b"<?xml version='1.0' encoding='%s'?>",
                b"<meta content='text/html;charset=%s' http-equiv=content-type>",
            )
        )
    )
    return bytes(declaration % label) + bytes(draw(mutated(PAGES)))


@fuzz_settings(300)
@given(body=st.binary(max_size=3000) | mutated(PAGES) | _declared(), content_type=_CONTENT_TYPES)
def test_decode_body_always_gives_encodable_text(body: bytes, content_type: str | None) -> None:
    text = decode_body(body, content_type)
    text.encode("utf-8")  # no lone surrogate: lxml and the store take it


# --- Content-Encoding ----------------------------------------------------------------------------

_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "raw-deflate": lambda data: zlib.compress(data, wbits=-15),
    "br": brotli.compress,
    "identity": lambda data: data,
    "compress": lambda data: data,  # unknown: passed through
}


def _chunks(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(points):
        yield data[start:end]


@fuzz_settings(300)
@given(
    plain=st.binary(max_size=3000) | st.builds(bytes, st.integers(0, 200_000)),
    codings=st.lists(st.sampled_from(sorted(_ENCODERS)), max_size=3),
    limit=st.integers(0, 5000),
    cuts=st.lists(st.integers(0, 5000), max_size=6),
    damage=st.none() | st.tuples(st.integers(0, 5000), st.integers(0, 255), st.booleans()),
)
def test_bounded_decoder_never_exceeds_its_limit(
    plain: bytes, codings: list[str], limit: int, cuts: list[int], damage: tuple[int, int, bool] | None
) -> None:
    """Valid, corrupt or truncated data in any codings: the body, at most ``limit`` bytes, or
    BodyTooLargeError or ContentDecodingError; what was decoded never exceeds the limit."""
    body = plain
    for coding in codings:
        body = _ENCODERS[coding](body)
    if damage is not None and body:
        at, value, truncate = damage
        at %= len(body)
        body = body[:at] if truncate else body[:at] + bytes([body[at] ^ value or 1]) + body[at + 1 :]
    header = ", ".join("deflate" if c == "raw-deflate" else c for c in codings)
    decoder = BoundedDecoder(header, limit)
    try:
        for chunk in _chunks(body, cuts):
            decoder.feed(chunk)
        decoded = decoder.finish()
    except (BodyTooLargeError, ContentDecodingError):
        assert len(decoder.value) <= limit
        if damage is None:
            assert len(plain) > limit or not codings
        return
    assert len(decoded) <= limit
    if damage is None:
        assert decoded == plain


@pytest.mark.parametrize(
    ("header", "encode"),
    [
        ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
        ("br, br", lambda data: brotli.compress(brotli.compress(data))),
        ("compress, gzip", gzip.compress),  # an unknown coding applied first, then gzip
    ],
)
@pytest.mark.parametrize("size", [0, 4096])
def test_body_of_the_limit_encoded_twice_is_decoded(
    header: str, encode: Callable[[bytes], bytes], size: int
) -> None:
    """Incompressible data grows a little when encoded: the inner layer may exceed the limit
    (it used to be refused as too large, as was an empty body with the limit 0)."""
    plain = random.Random(size).randbytes(size)
    decoder = BoundedDecoder(header, size)
    decoder.feed(encode(plain))
    assert decoder.finish() == plain


@pytest.mark.parametrize("wbits", [15, -15])
def test_deflate_in_chunks_of_one_byte(wbits: int) -> None:
    """zlib-wrapped or raw, one byte at a time (raw deflate used to fail on its second byte)."""
    plain = b"Avoid all travel to Mali. " * 20
    decoder = BoundedDecoder("deflate", 10_000)
    for byte in zlib.compress(plain, wbits=wbits):
        decoder.feed(bytes([byte]))
    assert decoder.finish() == plain
    empty = BoundedDecoder("deflate", 0)
    for byte in zlib.compress(b"", wbits=wbits):
        empty.feed(bytes([byte]))
    assert empty.finish() == b""
    with pytest.raises(ContentDecodingError):
        one = BoundedDecoder("deflate", 10)
        one.feed(b"\x03")
        one.finish()


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_compression_bomb_stops_at_the_limit(coding: str) -> None:
    """64 MiB of zeros compressed to kilobytes: decoding stops at 1 MiB, in a fraction of a second."""
    bomb = {"gzip": gzip.compress, "deflate": zlib.compress, "br": lambda d: brotli.compress(d, quality=1)}[
        coding
    ](bytes(64 * 2**20))
    assert len(bomb) < 300_000
    decoder = BoundedDecoder(coding, 2**20)
    with pytest.raises(BodyTooLargeError):
        for chunk in _chunks(bomb, list(range(0, len(bomb), 4096))):
            decoder.feed(chunk)
        decoder.finish()
    assert len(decoder.value) == 2**20


# --- HTTP answers -------------------------------------------------------------------------------------

_BLOCK_WORDS = (b"cloudflare", b"cf-chl", b"akamai", b"access denied", b"incapsula", b"datadome",
                b"perimeterx", b"px-captcha", b"just a moment", b"attention required")  # fmt: skip
_HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    st.integers(0, 10**30).map(str),
    st.builds(
        lambda day, month, year, zone: f"Mon, {day:02d} {month} {year} 12:00:00 {zone}",
        st.integers(0, 40), st.sampled_from(("Jan", "Feb", "Dec", "Foo")),
        st.integers(0, 10**20), st.sampled_from(("GMT", "+2359", "-2359", "+0000", "-9999", "EST")),
    ),
)  # fmt: skip


@fuzz_settings(300)
@given(
    status=st.integers(100, 599),
    start=st.binary(max_size=500) | st.lists(st.sampled_from(_BLOCK_WORDS), max_size=4).map(b" ".join),
    retry_after=st.none() | _HEADER_VALUES,
    date=st.none() | _HEADER_VALUES,
)
def test_status_error_reads_any_answer(
    status: int, start: bytes, retry_after: str | None, date: str | None
) -> None:
    """A FetchError for any status, body start and Retry-After/Date header; a delay that the
    scheduler can then use."""
    headers = httpx.Headers(
        {k: v for k, v in (("Retry-After", retry_after), ("Date", date)) if v is not None}
    )
    reason = looks_blocked(status, start)
    assert reason is None or reason.strip()
    error = status_error(status, headers, start)
    assert isinstance(error, FetchError) and str(error)
    if isinstance(error, RetryLaterError) and error.retry_after is not None:
        assert error.retry_after >= 0
        now = datetime(2026, 1, 1, tzinfo=UTC)
        next_check(started=now, finished=now, interval=timedelta(minutes=15), failures=1,
                   max_backoff=timedelta(hours=6), retry_after=error.retry_after)  # fmt: skip


_URLS = st.one_of(
    st.text(max_size=40),
    st.builds(lambda scheme, rest: scheme + rest,
              st.sampled_from(("http://", "https://", "HTTP://", "ftp://", "//")), st.text(max_size=40)),
    st.builds(lambda host, port: f"http://{host}:{port}/",
              st.sampled_from(("a", "[::1]", "xn--", "xn--a", "ü.de", "")), st.text(max_size=8)),
)  # fmt: skip


@fuzz_settings(300)
@given(url=_URLS)
def test_host_key_reads_any_url(url: str) -> None:
    try:
        key = host_key(url)
    except FetchError:
        return
    assert ":" in key


# --- configuration ---------------------------------------------------------------------------------

_FULL_CONFIG = """\
database: sqlite:///data/monitor.db
defaults: {interval: 15m, timeout: 30s, max_body: 5MB, concurrency: 16, per_host: 2, host_spacing: 0s,
           max_backoff: 6h, failures_before_broken: 3}
service: {lease: 60s, heartbeat: 10s, shutdown_grace: 5s, http: "127.0.0.1:8765"}
countries: [ML, BF, NE]
rules: [more-rules.yaml]
sources:
  - {id: html-page, kind: html, url: "https://example.org/a", countries: [ML],
     options: {select: [main, ".advice"], exclude: nav, required: false}}
  - {id: feed, kind: rss, url: "https://example.org/feed", options: {max_items: 10, match: [Mali, Bamako]}}
  - {id: fr-mali, kind: fr-diplomatie, url: "https://example.org/b", countries: [ML], fetcher: browser,
     wait_for: "#main", options: {ignore_titles: ["^Urgence"]}}
  - {id: msc, kind: msc, url: "https://example.org/c", options: {max_items: 5, synonyms: {ML: [Sénou]}}}
  - {id: us-state, kind: us-state, url: "https://example.org/d", interval: 1h, publisher: US State}
alerts:
  - {name: ops, url: "json://127.0.0.1:9/hook", min_class: update, countries: [ML], sources: [feed],
     kinds: [rss], digest: daily, digest_at: "07:30", max_attempts: 3, report_failures: true}
  - {name: mail, url: "mailto://user:${SMTP_PASSWORD:-secret}@example.org", health: false}
"""
CONFIGS = [_FULL_CONFIG.encode(), (ROOT / "config" / "monitor.yaml").read_bytes()]


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("config")
    (folder / "more-rules.yaml").write_text("language: en\nnoise: [refreshed]\n")
    return folder


@fuzz_settings(200)
@given(text=st.text(max_size=400) | mutated(CONFIGS).map(lambda b: b.decode("utf-8", "replace")))
def test_config_text_is_loaded_or_refused(config_dir: Path, text: str) -> None:
    """Any YAML text: a Config or one ConfigError naming the file."""
    path = config_dir / "monitor.yaml"
    try:
        loads(text, path=path, environ={})
    except ConfigError as exc:
        assert str(path) in str(exc)


# --- phrase rules ---------------------------------------------------------------------------------

RULE_FILES = [path.read_bytes() for path in sorted((ROOT / "monitor" / "data" / "rules").glob("*.yaml"))]
_counter = itertools.count()


@fuzz_settings(200)
@given(text=st.text(max_size=300) | mutated(RULE_FILES).map(lambda b: b.decode("utf-8", "replace")))
def test_rule_file_is_loaded_or_refused(config_dir: Path, text: str) -> None:
    """A user's rule file: rules or a RulesError naming the file. (The built-in files are left
    out, so that each example reads one file, not four: their mutations are the seeds.)"""
    path = config_dir / f"rules-{next(_counter)}.yaml"  # load_rules caches by path
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with mock.patch.object(rules, "BUILTIN_FILES", ()):
        try:
            rules.load_rules([path])
        except rules.RulesError as exc:
            assert str(path) in str(exc) or "cannot be combined" in str(exc)


@pytest.mark.parametrize(
    "text",
    [
        "language: 2025-13-45\n",  # PyYAML: ValueError building the date
        "language: en\nnoise: " + "[" * 2000 + "]" * 2000 + "\n",  # PyYAML: RecursionError
        "language: en\nnoise: ['a{4294967296}']\n",  # re: OverflowError
        "language: en\nnoise: ['" + "(" * 1000 + "a" + ")" * 1000 + "']\n",  # re: RecursionError
        "language: en\nrules: [{name: x, class: update, applies_to: [ministry],"
        ' patterns: ["b{99999999999}"]}]\n',
    ],
)
def test_rule_file_regressions(config_dir: Path, text: str) -> None:
    path = config_dir / f"rules-{next(_counter)}.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(rules.RulesError, match=str(path)):
        rules.load_rules([path])


def test_rule_file_with_a_nul_in_its_name(config_dir: Path) -> None:
    with pytest.raises(rules.RulesError, match="cannot read"):
        rules.load_rules([str(config_dir / "a\0b.yaml")])


# --- seed timelines ---------------------------------------------------------------------------------

SEED = ROOT / "seeds" / "mali-2025-11"


@pytest.fixture(scope="module")
def seed_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("seed") / "seed"
    shutil.copytree(SEED, folder)
    return folder


@fuzz_settings(150)
@given(body=st.binary(max_size=300) | mutated([(SEED / TIMELINE).read_bytes()]))
def test_timeline_is_loaded_or_refused(seed_copy: Path, body: bytes) -> None:
    """Any timeline.yaml: a Timeline whose files are inside the seed, or a ConfigError."""
    (seed_copy / TIMELINE).write_bytes(body)
    try:
        timeline = load_timeline(seed_copy)
    except ConfigError as exc:
        assert str(seed_copy) in str(exc)
        return
    for source in timeline.sources:
        for served in source.snapshots:
            assert (seed_copy / source.id / served.file).resolve().is_relative_to(seed_copy.resolve())


_SEED_SOURCE = """\
title: t
start: "2025-10-20T00:00:00Z"
end: "2025-11-12T00:00:00Z"
sources:
  - id: {id}
    kind: html
    url: https://example.org/a
    content_type: text/html
    snapshots: [{{from: "{start}", file: "{file}"}}]
"""


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "a" * 300}, "id"),  # used to be OSError: File name too long, from Path.is_file
        ({"id": '"../../.."', "file": "etc/passwd"}, "id"),  # a folder outside the seed
        ({"start": "0001-01-01T00:00:00+01:00"}, "range"),  # used to be OverflowError
        ({"file": "x" * 300}, "not found"),
    ],
)
def test_timeline_regressions(seed_copy: Path, fields: dict[str, str], message: str) -> None:
    values = {"id": "a", "start": "2025-10-20T00:00:00Z", "file": "x.html", **fields}
    (seed_copy / TIMELINE).write_text(_SEED_SOURCE.format(**values))
    with pytest.raises(ConfigError, match=message):
        load_timeline(seed_copy)


@pytest.mark.parametrize("text", ["start: 2025-13-45\n", "a: " + "[" * 2000 + "]" * 2000 + "\n"])
def test_timeline_yaml_regressions(seed_copy: Path, text: str) -> None:
    (seed_copy / TIMELINE).write_text(text)
    with pytest.raises(ConfigError, match="cannot read the timeline"):
        load_timeline(seed_copy)


# --- monitor classify --batch ----------------------------------------------------------------------

CORPUS = [
    (ROOT / "tests" / "corpus" / name).read_bytes()[:6000] for name in ("classification.jsonl", "blind.jsonl")
]


@fuzz_settings(200)
@given(body=st.binary(max_size=500) | mutated(CORPUS))
def test_batch_file_is_read_or_refused(config_dir: Path, body: bytes) -> None:
    path = config_dir / "batch.jsonl"
    path.write_bytes(body)
    try:
        items = read_batch(path)
    except MonitorError as exc:
        assert str(path) in str(exc)
        return
    assert all(item.before is not None and item.after is not None for item in items)


# --- the report's query parameters --------------------------------------------------------------------


def _app_call(path: str, query: str) -> str:
    def load(window: Any) -> History:
        raise LookupError("no store in this test")  # answered with a 500, after the parameters

    app = make_app(load=load, version=lambda: "1", render_html=lambda history: "")
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    statuses: list[str] = []
    app(environ, lambda status, headers, exc_info=None: statuses.append(status))  # type: ignore[arg-type]
    return statuses[0]


_QUERY_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ("2025-10-20", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "ML", "ml", "%ff", "%00")
    ),
)  # fmt: skip


@fuzz_settings(200)
@given(
    path=st.sampled_from(("/", "/feeds/all.atom", "/feeds/ML.atom", "/healthz", "/x")) | st.text(max_size=20),
    pairs=st.lists(
        st.tuples(st.sampled_from(("since", "until", "country", "token", "x")) | st.text(max_size=5),
                  _QUERY_VALUES),
        max_size=4,
    ),
    raw=st.text(max_size=60),
)  # fmt: skip
def test_report_answers_any_query(path: str, pairs: list[tuple[str, str]], raw: str) -> None:
    """Any path and query string: 200/304/400/404/500 (the 500 of this test's store), never an
    exception out of the application."""
    query = "&".join(f"{name}={value}" for name, value in pairs) + ("&" + raw if raw else "")
    status = _app_call(path, query)
    assert status.split()[0] in ("200", "304", "400", "404", "500")


# --- reported crashes in modules these tests do not fix ---------------------------------------------


@pytest.mark.parametrize("label", BROKEN_LABELS)
def test_once_crashing_decode_body_unknown_codec(label: str) -> None:
    """webencodings names encodings Python has no codec for: the label is ignored."""
    text = decode_body(f'<meta charset="{label}"><p>Mali</p>'.encode() + b"\x80\xff", None)
    assert text.startswith(f'<meta charset="{label}"><p>Mali</p>')


def test_once_crashing_retry_after_date_overflow() -> None:
    error = status_error(
        503, httpx.Headers({"Retry-After": "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"}), b""
    )
    assert isinstance(error, RetryLaterError) and error.retry_after is None


def test_once_crashing_retry_after_seconds_overflow() -> None:
    error = status_error(503, httpx.Headers({"Retry-After": "86400000000000"}), b"")
    assert isinstance(error, RetryLaterError) and error.retry_after == 86_400
    endless = status_error(429, httpx.Headers({"Retry-After": "9" * 400}), b"")  # float: infinite
    assert isinstance(endless, RetryLaterError) and endless.retry_after == 86_400
    now = datetime(2026, 1, 1, tzinfo=UTC)
    due = next_check(started=now, finished=now, interval=timedelta(minutes=15), failures=1,
                     max_backoff=timedelta(hours=6), retry_after=error.retry_after)  # fmt: skip
    assert due == now + timedelta(days=1)  # a Retry-After is honoured up to a day


def test_once_crashing_host_key_idna_error() -> None:
    with pytest.raises(FetchError):
        host_key("http://xn--/")


@pytest.mark.parametrize("text", ["database: 2025-13-45\n", "sources: " + "[" * 900 + "]" * 900 + "\n"])
def test_once_crashing_config_yaml_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        loads(text, path=Path("monitor.yaml"), environ={})


@pytest.mark.parametrize(
    "text",
    [
        "defaults: {interval: 99999999999999999999999d}\n",
        "defaults: {max_body: " + "9" * 400 + "}\n",
        "service: {heartbeat: 999999999d, lease: 999999999d}\n",
    ],
)
def test_once_crashing_config_overflows(text: str) -> None:
    with pytest.raises(ConfigError):
        loads(text, path=Path("monitor.yaml"), environ={})


def test_once_crashing_config_top_level_number_key() -> None:
    with pytest.raises(ConfigError):
        loads("1: 2\n", path=Path("monitor.yaml"), environ={})


def test_once_crashing_batch_nested_json(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text("[" * 100_000 + "\n")
    with pytest.raises(MonitorError, match="line 1: not valid JSON: nested too deeply"):
        read_batch(path)


def test_a_batch_line_may_hold_a_line_separator(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    line = {"id": "a", "kind": "ministry", "country": "ML", "before": "Calme.", "after": "Partez\u2028vite."}
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    [item] = read_batch(path)
    assert item.after == "Partez\u2028vite."


@pytest.mark.parametrize("query", ["since=0001-01-01T00:00:00%2B01:00", "until=9999-12-31T23:59:59-01:00"])
def test_once_crashing_report_date_overflow(query: str) -> None:
    assert _app_call("/", query).startswith("400")
