"""The replay's pieces: its simulated clock, the seed's web server over real HTTP, and its
loopback-only network."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from monitor.replay.clock import SteppedClock
from monitor.replay.run import LoopbackOnly
from monitor.replay.server import SeedServer, SeedSite
from monitor.replay.timeline import SeedSource, Timeline, load_timeline
from monitor.service.timebase import RealTime

START = datetime(2025, 10, 20, tzinfo=UTC)
FEED_TWO = datetime(2025, 10, 22, 6, 30, tzinfo=UTC)
FEED_THREE = datetime(2025, 10, 25, 12, 0, tzinfo=UTC)
PAGE_ONE = datetime(2025, 10, 19, tzinfo=UTC)
PAGE_TWO = datetime(2025, 10, 23, tzinfo=UTC)

TIMELINE = """
title: Two publishers
start: "2025-10-20T00:00:00Z"
end: "2025-11-01T00:00:00Z"
sources:
  - id: feed
    kind: rss
    url: https://example.org/feed.xml?lang=en
    content_type: application/rss+xml; charset=utf-8
    snapshots:
      - {from: "2025-10-20T00:00:00Z", file: one.xml}
      - {from: "2025-10-22T06:30:00Z", file: two.xml, expect: severe}
      - {from: "2025-10-25T12:00:00Z", file: three.xml, expect: unchanged}
  - id: page
    kind: html
    url: https://example.org/advice/mali
    content_type: text/html; charset=utf-8
    snapshots:
      - {from: "2025-10-19T00:00:00Z", file: one.html}
      - {from: "2025-10-23T00:00:00Z", file: two.html, expect: noise}
"""
FILES = {
    "feed/one.xml": b"<rss><channel><title>one</title></channel></rss>",
    "feed/two.xml": b"<rss><channel><title>two</title></channel></rss>",
    "feed/three.xml": b"<rss><channel><title>three</title></channel></rss>\n",
    "page/one.html": "<p>Vigilance renforc\u00e9e</p>".encode(),
    "page/two.html": "<p>Vigilance renforc\u00e9e.</p>".encode(),
}


def write_seed(folder: Path, timeline: str = TIMELINE, files: dict[str, bytes] = FILES) -> Path:
    (folder / "timeline.yaml").write_text(timeline, encoding="utf-8")
    for name, body in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    return folder


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


class Seed:
    """A small seed served on 127.0.0.1, with its clock and an HTTP client."""

    def __init__(
        self, timeline: Timeline, clock: SteppedClock, server: SeedServer, client: httpx.Client
    ) -> None:
        self.timeline = timeline
        self.clock = clock
        self.server = server
        self.client = client
        self.feed, self.page = timeline.sources

    @property
    def site(self) -> SeedSite:
        return self.server.site

    def get(self, source: SeedSource, **headers: str) -> httpx.Response:
        return self.client.get(self.server.url_of(source), headers=headers)


@pytest.fixture
def seed(tmp_path: Path) -> Iterator[Seed]:
    folder = write_seed(tmp_path)
    timeline = load_timeline(folder)
    clock = SteppedClock(PAGE_ONE - timedelta(days=1))  # before any source serves anything
    with SeedServer(SeedSite(folder, timeline, clock.now)) as server, httpx.Client(timeout=5) as client:
        yield Seed(timeline, clock, server, client)


# SteppedClock


def test_stepped_clock_starts_at_its_start_and_moves_only_when_advanced() -> None:
    clock = SteppedClock(START)
    assert clock.now() == START
    time.sleep(0.01)
    assert clock.now() == START
    clock.advance_to(START + timedelta(hours=2))
    assert clock.now() == START + timedelta(hours=2)
    clock.advance_to(START + timedelta(hours=2))  # staying put is not going back
    assert clock.now() == START + timedelta(hours=2)


def test_stepped_clock_refuses_to_go_back() -> None:
    clock = SteppedClock(START)
    clock.advance_to(START + timedelta(days=1))
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(START + timedelta(hours=23))
    assert clock.now() == START + timedelta(days=1)


def test_stepped_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SteppedClock(datetime(2025, 10, 20))


def test_stepped_clock_wakes_a_reached_moment_now_and_a_later_one_not_yet() -> None:
    clock = SteppedClock(START)
    for reached in (START - timedelta(days=3), START):
        wall = clock.wall(reached)
        assert wall is not None and wall.tzinfo is not None
        assert abs(wall - datetime.now(UTC)) < timedelta(seconds=5)
    assert clock.wall(START + timedelta(seconds=1)) is None
    clock.advance_to(START + timedelta(seconds=1))
    assert clock.wall(START + timedelta(seconds=1)) is not None


# RealTime


def test_real_time_wakes_a_moment_at_that_moment() -> None:
    moment = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert RealTime().wall(moment) == moment
    assert RealTime().wall(START) == START


def test_real_time_reads_the_clock_it_is_given() -> None:
    assert RealTime(clock=lambda: START).now() == START
    assert abs(RealTime().now() - datetime.now(UTC)) < timedelta(seconds=5)


# SeedSite over HTTP


def test_before_a_sources_first_file_it_answers_404(seed: Seed) -> None:
    response = seed.get(seed.page)
    assert response.status_code == 404
    assert response.headers["Date"] == http_date(seed.clock.now())
    seed.clock.advance_to(PAGE_ONE - timedelta(seconds=1))
    assert seed.get(seed.page).status_code == 404
    seed.clock.advance_to(PAGE_ONE)
    assert seed.get(seed.page).status_code == 200
    assert seed.get(seed.feed).status_code == 404  # its first file comes at the seed's start


def test_a_path_no_source_has_answers_404(seed: Seed) -> None:
    seed.clock.advance_to(START)
    for path in ("/", "/nothing", "/advice/mali/", "/feed.xml"):
        response = seed.client.get(seed.server.url + path)
        assert response.status_code == 404, path


def test_a_source_url_is_matched_with_its_query(seed: Seed) -> None:
    seed.clock.advance_to(START)
    assert seed.feed.path == "/feed.xml?lang=en"
    assert seed.client.get(seed.server.url + "/feed.xml?lang=en").status_code == 200
    assert seed.client.get(seed.server.url + "/feed.xml?lang=fr").status_code == 404
    assert seed.client.get(seed.server.url + "/feed.xml").status_code == 404


def test_each_file_is_served_from_its_moment_with_the_timelines_content_type(seed: Seed) -> None:
    steps = [
        (PAGE_ONE, seed.page, "page/one.html"),
        (START, seed.feed, "feed/one.xml"),
        (FEED_TWO - timedelta(seconds=1), seed.feed, "feed/one.xml"),
        (FEED_TWO, seed.feed, "feed/two.xml"),
        (PAGE_TWO, seed.page, "page/two.html"),
        (PAGE_TWO, seed.feed, "feed/two.xml"),
        (FEED_THREE, seed.feed, "feed/three.xml"),
        (FEED_THREE + timedelta(days=300), seed.feed, "feed/three.xml"),
    ]
    for moment, source, name in steps:
        seed.clock.advance_to(moment)
        response = seed.get(source)
        assert response.status_code == 200, (moment, name)
        assert response.content == FILES[name], (moment, name)
        assert response.headers["Content-Type"] == source.content_type
        assert response.headers["Content-Length"] == str(len(FILES[name]))


def test_last_modified_is_when_the_file_started_being_served_and_date_is_simulated(seed: Seed) -> None:
    seed.clock.advance_to(FEED_TWO + timedelta(hours=5, minutes=7, seconds=9))
    response = seed.get(seed.feed)
    assert response.headers["Last-Modified"] == "Wed, 22 Oct 2025 06:30:00 GMT"
    assert response.headers["Date"] == "Wed, 22 Oct 2025 11:37:09 GMT"
    assert response.headers["Date"] != http_date(datetime.now(UTC).replace(microsecond=0))


def test_every_file_has_its_own_strong_etag(seed: Seed) -> None:
    seed.clock.advance_to(START)
    first = seed.get(seed.feed).headers["ETag"]
    again = seed.get(seed.feed).headers["ETag"]
    seed.clock.advance_to(FEED_TWO)
    second = seed.get(seed.feed).headers["ETag"]
    page = seed.get(seed.page).headers["ETag"]
    for etag in (first, second, page):
        assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    assert first == again
    assert len({first, second, page}) == 3


def test_a_matching_if_none_match_answers_304_without_a_body(seed: Seed) -> None:
    seed.clock.advance_to(START)
    etag = seed.get(seed.feed).headers["ETag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = seed.get(seed.feed, **{"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["ETag"] == etag
        assert response.headers["Last-Modified"] == http_date(START)
        assert response.headers["Date"] == http_date(START)


def test_an_old_etag_gets_the_new_file(seed: Seed) -> None:
    seed.clock.advance_to(START)
    old = seed.get(seed.feed).headers["ETag"]
    seed.clock.advance_to(FEED_TWO)
    response = seed.get(seed.feed, **{"If-None-Match": old})
    assert response.status_code == 200
    assert response.content == FILES["feed/two.xml"]
    assert response.headers["ETag"] != old


def test_if_modified_since_at_or_after_last_modified_answers_304(seed: Seed) -> None:
    seed.clock.advance_to(FEED_TWO + timedelta(days=1))
    for since in (FEED_TWO, FEED_TWO + timedelta(hours=1)):
        response = seed.get(seed.feed, **{"If-Modified-Since": http_date(since)})
        assert response.status_code == 304, since
        assert response.content == b""


def test_if_modified_since_before_last_modified_gets_the_file(seed: Seed) -> None:
    seed.clock.advance_to(FEED_TWO + timedelta(days=1))
    for since in (FEED_TWO - timedelta(seconds=1), START):
        response = seed.get(seed.feed, **{"If-Modified-Since": http_date(since)})
        assert response.status_code == 200, since
        assert response.content == FILES["feed/two.xml"]
    unreadable = seed.get(seed.feed, **{"If-Modified-Since": "yesterday"})
    assert unreadable.status_code == 200


def test_if_none_match_takes_precedence_over_if_modified_since(seed: Seed) -> None:
    seed.clock.advance_to(FEED_TWO)
    etag = seed.get(seed.feed).headers["ETag"]
    stale = seed.get(
        seed.feed, **{"If-None-Match": '"not-this-one"', "If-Modified-Since": http_date(FEED_TWO)}
    )
    assert stale.status_code == 200
    assert stale.content == FILES["feed/two.xml"]
    fresh = seed.get(seed.feed, **{"If-None-Match": etag, "If-Modified-Since": http_date(START)})
    assert fresh.status_code == 304


def test_head_answers_the_headers_without_the_body(seed: Seed) -> None:
    seed.clock.advance_to(PAGE_TWO)
    response = seed.client.head(seed.server.url_of(seed.page))
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(FILES["page/two.html"]))
    assert response.headers["Content-Type"] == seed.page.content_type
    assert response.content == b""


def test_other_methods_are_refused_with_405_and_allow(seed: Seed) -> None:
    seed.clock.advance_to(START)
    for method in ("POST", "PUT", "DELETE"):
        response = seed.client.request(method, seed.server.url_of(seed.feed), content=b"x")
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "GET, HEAD"


def test_site_counts_its_answers_per_source_and_status(seed: Seed) -> None:
    seed.get(seed.feed)  # 404: before its first file
    seed.clock.advance_to(START)
    etag = seed.get(seed.feed).headers["ETag"]
    seed.get(seed.feed, **{"If-None-Match": etag})
    seed.get(seed.feed, **{"If-None-Match": etag})
    seed.get(seed.page)
    seed.client.get(seed.server.url + "/nothing")
    assert seed.site.requests == {
        ("feed", 404): 1,
        ("feed", 200): 1,
        ("feed", 304): 2,
        ("page", 200): 1,
        ("", 404): 1,
    }


def test_a_timeline_written_with_a_utc_offset_is_served_with_dates_in_gmt(tmp_path: Path) -> None:
    text = TIMELINE.replace('"2025-10-20T00:00:00Z"', '"2025-10-20T02:00:00+02:00"')
    timeline = load_timeline(write_seed(tmp_path, text))
    clock = SteppedClock(timeline.start)  # as the replay makes it
    with SeedServer(SeedSite(tmp_path, timeline, clock.now)) as server, httpx.Client(timeout=5) as client:
        response = client.get(server.url_of(timeline.sources[0]))
    assert response.status_code == 200
    assert response.headers["Last-Modified"] == "Mon, 20 Oct 2025 00:00:00 GMT"
    assert response.headers["Date"] == "Mon, 20 Oct 2025 00:00:00 GMT"


# LoopbackOnly


def test_loopback_only_reaches_a_server_on_127_0_0_1(seed: Seed) -> None:
    seed.clock.advance_to(START)
    url = seed.server.url_of(seed.feed)
    assert url.startswith("http://127.0.0.1:")

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=LoopbackOnly(), timeout=5) as client:
            return await client.get(url)

    response = asyncio.run(fetch())
    assert response.status_code == 200
    assert response.content == FILES["feed/one.xml"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://example.org/", "example.org"),
        ("http://10.255.255.1/feed", "10.255.255.1"),
        ("https://travel.state.gov/_res/rss/TAsTWs.xml", "travel.state.gov"),
        ("http://localhost:9/", "localhost"),
    ],
)
def test_loopback_only_refuses_any_other_host_without_connecting(url: str, host: str) -> None:
    async def fetch() -> None:
        async with httpx.AsyncClient(transport=LoopbackOnly(), timeout=30) as client:
            await client.get(url)

    began = time.perf_counter()
    with pytest.raises(httpx.ConnectError) as raised:
        asyncio.run(fetch())
    assert time.perf_counter() - began < 0.5
    assert host in str(raised.value)
    assert "127.0.0.1" in str(raised.value)
