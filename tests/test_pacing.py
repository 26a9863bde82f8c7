"""Politeness per host: spacing between request starts, and the hosts' Retry-After.

The pacer alone runs on an injected clock; the fetchers run against real servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Coroutine
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar

import pytest

from monitor.browser import BrowserFetcher
from monitor.errors import FetchError
from monitor.http import (
    Fetcher,
    HostPacer,
    HttpSettings,
    RetryLaterError,
    build_client,
    host_key,
    pacer_for,
)
from monitor.models import Fetched
from tests.support.httpserver import LocalServer

HOST = "advice.example:443"
T = TypeVar("T")


class FakeTime:
    """A monotonic clock that only moves when something sleeps on it.

    ``during_sleep`` runs at the start of each sleep, before the clock moves: it stands for
    whatever else the event loop does meanwhile.
    """

    def __init__(self, *, moves: bool = True) -> None:
        self.now = 1000.0
        self.moves = moves
        self.sleeps: list[float] = []
        self.during_sleep: Callable[[], None] = lambda: None

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.during_sleep()
        if self.moves:
            self.now += seconds
        await asyncio.sleep(0)

    def pacer(self, spacing: float, max_wait: float = 60.0) -> HostPacer:
        return HostPacer(spacing, max_wait=max_wait, clock=self.clock, sleep=self.sleep)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# -- the pacer on its own ---------------------------------------------------------------------


def test_concurrent_callers_get_successive_slots() -> None:
    fake = FakeTime(moves=False)
    pacer = fake.pacer(0.2)

    async def five() -> None:
        await asyncio.gather(*(pacer.wait_turn(HOST) for _ in range(5)))

    run(five())

    assert fake.sleeps == pytest.approx([0.2, 0.4, 0.6, 0.8])


def test_spacing_counts_from_the_previous_start() -> None:
    fake = FakeTime()
    pacer = fake.pacer(1.0)

    async def calls() -> None:
        await pacer.wait_turn(HOST)
        fake.now += 0.25
        await pacer.wait_turn(HOST)  # 0.75 s left of the spacing
        fake.now += 5
        await pacer.wait_turn(HOST)  # long after: no wait

    run(calls())

    assert fake.sleeps == pytest.approx([0.75])


def test_hosts_do_not_wait_for_each_other() -> None:
    fake = FakeTime(moves=False)
    pacer = fake.pacer(1.0)

    async def calls() -> None:
        await asyncio.gather(*(pacer.wait_turn(f"host{n}.example:443") for n in range(5)))
        await pacer.wait_turn("host0.example:443")

    run(calls())

    assert fake.sleeps == [1.0]


def test_spacing_zero_never_waits() -> None:
    fake = FakeTime(moves=False)
    pacer = fake.pacer(0.0)

    async def calls() -> None:
        await asyncio.gather(*(pacer.wait_turn(HOST) for _ in range(10)))

    run(calls())

    assert fake.sleeps == []


def test_retry_after_holds_the_host_back_even_without_spacing() -> None:
    fake = FakeTime()
    pacer = fake.pacer(0.0)
    pacer.defer(HOST, 2.0)

    async def calls() -> None:
        await pacer.wait_turn(HOST)
        await pacer.wait_turn("other.example:443")
        await pacer.wait_turn(HOST)

    run(calls())

    assert fake.sleeps == [2.0]


def test_retry_after_only_ever_moves_later() -> None:
    fake = FakeTime()
    pacer = fake.pacer(0.0)
    pacer.defer(HOST, 10.0)
    pacer.defer(HOST, 3.0)
    pacer.defer("other.example:443", 3.0)
    pacer.defer("other.example:443", 8.0)

    async def calls() -> None:
        await pacer.wait_turn("other.example:443")
        await pacer.wait_turn(HOST)
        await pacer.wait_turn(HOST)

    run(calls())

    assert fake.sleeps == [8.0, 2.0]


def test_retry_after_beyond_max_wait_raises_at_once() -> None:
    fake = FakeTime()
    pacer = fake.pacer(1.0, max_wait=30.0)
    pacer.defer(HOST, 95.0)

    with pytest.raises(RetryLaterError) as caught:
        run(pacer.wait_turn(HOST))

    assert fake.sleeps == []
    assert caught.value.retry_after == pytest.approx(95.0)
    assert caught.value.message == f"{HOST} asked to be left alone for another 95 s (Retry-After)"
    fake.now += 70  # 25 s left: within max_wait, so waited for
    run(pacer.wait_turn(HOST))
    assert fake.sleeps == pytest.approx([25.0])


def test_spacing_waits_are_waited_whatever_max_wait() -> None:
    fake = FakeTime(moves=False)
    pacer = fake.pacer(5.0, max_wait=1.0)

    async def calls() -> None:
        await asyncio.gather(*(pacer.wait_turn(HOST) for _ in range(3)))

    run(calls())

    assert fake.sleeps == [5.0, 10.0]


def test_a_retry_after_arriving_during_the_wait_applies_to_the_waiting_caller() -> None:
    fake = FakeTime()
    pacer = fake.pacer(0.2)
    # While the second caller waits for its turn, the first one's answer was a 429.
    fake.during_sleep = lambda: pacer.defer(HOST, 5.0) if len(fake.sleeps) == 1 else None

    async def two() -> None:
        await pacer.wait_turn(HOST)
        await pacer.wait_turn(HOST)

    run(two())

    assert fake.sleeps == pytest.approx([0.2, 4.8])


def test_a_long_retry_after_arriving_during_the_wait_raises() -> None:
    fake = FakeTime()
    pacer = fake.pacer(0.2, max_wait=3.0)
    fake.during_sleep = lambda: pacer.defer(HOST, 5.0)

    async def two() -> None:
        await pacer.wait_turn(HOST)
        await pacer.wait_turn(HOST)

    with pytest.raises(RetryLaterError) as caught:
        run(two())

    assert fake.sleeps == pytest.approx([0.2])
    assert caught.value.retry_after == pytest.approx(4.8)


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="host_spacing"):
        HttpSettings(host_spacing=-1)
    with pytest.raises(ValueError, match="spacing"):
        HostPacer(-0.5, max_wait=1)
    with pytest.raises(ValueError, match="max_wait"):
        HostPacer(1, max_wait=-1)


def test_pacer_for_uses_the_spacing_and_the_timeout() -> None:
    pacer = pacer_for(HttpSettings(host_spacing=0.1, timeout=3))

    async def calls() -> float:
        await pacer.wait_turn(HOST)
        started = time.monotonic()
        await pacer.wait_turn(HOST)
        return time.monotonic() - started

    assert run(calls()) >= 0.09
    pacer.defer(HOST, 4)
    with pytest.raises(RetryLaterError):
        run(pacer.wait_turn(HOST))


# -- the fetchers against real servers --------------------------------------------------------


class Arrivals:
    """A route that answers 200 and notes when each request arrived (server side)."""

    def __init__(self, server: LocalServer, path: str) -> None:
        self.times: list[float] = []
        self.url = server.url(path)
        server.route_handler(path, self._answer)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        self.times.append(time.monotonic())
        body = b"advice"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def gaps(self) -> list[float]:
        ordered = sorted(self.times)
        return [later - earlier for earlier, later in itertools.pairwise(ordered)]


def fetch_all(settings: HttpSettings, pacer: HostPacer, urls: list[str]) -> list[Fetched | BaseException]:
    """Fetch ``urls`` concurrently through one paced Fetcher; errors are returned, not raised."""

    async def go() -> list[Fetched | BaseException]:
        async with Fetcher(build_client(settings), settings, pacer) as fetcher:
            calls = (fetcher.fetch(url, source_id=f"s{n}") for n, url in enumerate(urls))
            return await asyncio.gather(*calls, return_exceptions=True)

    return run(go())


def test_requests_to_one_host_start_spacing_apart(http_server: LocalServer) -> None:
    settings = HttpSettings(per_host=5, host_spacing=0.2)
    route = Arrivals(http_server, "/feed")

    answers = fetch_all(settings, pacer_for(settings), [route.url] * 5)

    assert all(isinstance(answer, Fetched) and answer.status == 200 for answer in answers)
    assert len(route.times) == 5
    # A little slack for the network between the client's start and the server's clock.
    assert min(route.gaps()) >= 0.17


def test_spacing_waits_are_not_part_of_the_timeout(http_server: LocalServer) -> None:
    settings = HttpSettings(timeout=0.3, per_host=4, host_spacing=0.25)
    route = Arrivals(http_server, "/feed")

    answers = fetch_all(settings, pacer_for(settings), [route.url] * 4)

    assert all(isinstance(answer, Fetched) for answer in answers)  # the last one waited 0.75 s
    assert len(route.times) == 4


def test_another_host_is_not_held_back() -> None:
    settings = HttpSettings(host_spacing=1.0)
    with LocalServer() as first, LocalServer() as second:
        a, b = Arrivals(first, "/index"), Arrivals(second, "/index")
        assert host_key(a.url) != host_key(b.url)
        started = time.monotonic()

        answers = fetch_all(settings, pacer_for(settings), [a.url, b.url])

        assert time.monotonic() - started < 0.8
    assert all(isinstance(answer, Fetched) for answer in answers)


def test_without_a_pacer_nothing_is_spaced(http_server: LocalServer) -> None:
    settings = HttpSettings(host_spacing=1.0)
    route = Arrivals(http_server, "/feed")
    started = time.monotonic()

    async def go() -> None:
        async with Fetcher(build_client(settings), settings) as fetcher:
            for _ in range(3):
                await fetcher.fetch(route.url)

    run(go())

    assert time.monotonic() - started < 0.8
    assert len(route.times) == 3


def test_retry_after_holds_back_the_next_request(http_server: LocalServer) -> None:
    settings = HttpSettings(timeout=5, host_spacing=0)
    http_server.route("/busy", "slow down", status=429, headers={"Retry-After": "1"})
    route = Arrivals(http_server, "/feed")

    async def go() -> tuple[FetchError, float]:
        async with Fetcher(build_client(settings), settings, pacer_for(settings)) as fetcher:
            with pytest.raises(RetryLaterError) as caught:
                await fetcher.fetch(http_server.url("/busy"), source_id="us-all")
            refused = time.monotonic()
            await fetcher.fetch(route.url)
            return caught.value, refused

    error, refused = run(go())

    assert error.status == 429 and error.source_id == "us-all"
    assert route.times[0] - refused >= 0.95


def test_retry_after_beyond_max_wait_fails_without_a_request(http_server: LocalServer) -> None:
    settings = HttpSettings(timeout=1, host_spacing=0)
    http_server.route("/busy", "slow down", status=503, headers={"Retry-After": "120"})
    route = Arrivals(http_server, "/feed")

    async def go() -> FetchError:
        async with Fetcher(build_client(settings), settings, pacer_for(settings)) as fetcher:
            with pytest.raises(RetryLaterError):
                await fetcher.fetch(http_server.url("/busy"))
            with pytest.raises(RetryLaterError) as caught:
                await fetcher.fetch(route.url, source_id="uk-index")
            return caught.value

    started = time.monotonic()
    error = run(go())

    assert time.monotonic() - started < 0.5
    assert route.times == []
    assert isinstance(error, RetryLaterError)
    assert error.source_id == "uk-index" and error.url == route.url
    assert error.retry_after is not None and 119 < error.retry_after <= 120
    assert error.message.endswith("asked to be left alone for another 120 s (Retry-After)")
    assert host_key(route.url) in error.message


def test_a_busy_answer_without_retry_after_holds_nothing_back(http_server: LocalServer) -> None:
    settings = HttpSettings(timeout=1, host_spacing=0)
    http_server.route("/busy", "slow down", status=503)
    route = Arrivals(http_server, "/feed")

    async def go() -> RetryLaterError:
        async with Fetcher(build_client(settings), settings, pacer_for(settings)) as fetcher:
            with pytest.raises(RetryLaterError) as caught:
                await fetcher.fetch(http_server.url("/busy"))
            await fetcher.fetch(route.url)
            return caught.value

    started = time.monotonic()
    error = run(go())

    assert error.retry_after is None
    assert time.monotonic() - started < 0.5
    assert len(route.times) == 1


def test_the_browser_fetcher_respects_a_shared_retry_after() -> None:
    # The turn comes before the browser starts: a host that asked to be left alone costs no
    # browser, so this holds even where no Chromium is installed.
    settings = HttpSettings(timeout=2)
    pacer = pacer_for(settings)
    url = "https://advice.example/mali"
    pacer.defer(host_key(url), 60)

    async def go() -> None:
        async with BrowserFetcher(settings, executable="/nonexistent/chromium", pacer=pacer) as browser:
            await browser.fetch(url, source_id="fr-mali")

    with pytest.raises(RetryLaterError) as caught:
        run(go())

    assert caught.value.source_id == "fr-mali" and caught.value.url == url
    assert caught.value.retry_after is not None and 59 < caught.value.retry_after <= 60
