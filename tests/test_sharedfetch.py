"""One upstream document, several sources: one request per batch, through the real fetcher."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from monitor.errors import BlockedError, FetchError
from monitor.http import Fetcher, HttpSettings, RetryLaterError, build_client
from monitor.models import Fetched, Validators
from monitor.sharedfetch import SharedFetches
from tests.support.httpserver import LocalServer

FEED = '{"countries": ["ML", "NE", "BF"]}'
LAST_MODIFIED = "Tue, 01 Oct 2024 10:00:00 GMT"
T = TypeVar("T")


def in_batch(body: Callable[[SharedFetches], Awaitable[T]]) -> T:
    """Run ``body`` with a SharedFetches over a real Fetcher."""

    async def go() -> T:
        settings = HttpSettings(timeout=5)
        async with Fetcher(build_client(settings), settings) as fetcher:
            return await body(SharedFetches(fetcher))

    return asyncio.run(go())


def test_concurrent_callers_share_one_request(http_server: LocalServer) -> None:
    http_server.route("/feed", FEED, content_type="application/json", etag='"v2"', delay=0.2)
    url = http_server.url("/feed")

    async def five(shared: SharedFetches) -> tuple[list[Fetched], int]:
        answers = await asyncio.gather(*(shared.fetch(url, source_id=f"us-{n}") for n in range(5)))
        return answers, shared.requests

    answers, requests = in_batch(five)

    assert http_server.hits("/feed") == 1 and requests == 1
    for answer in answers:
        assert (answer.status, answer.body, answer.url) == (200, FEED.encode(), url)
        assert answer.content_type == "application/json"
        assert answer.validators == Validators('"v2"')


def test_later_callers_of_the_batch_get_the_same_answer(http_server: LocalServer) -> None:
    http_server.route("/feed", FEED)
    http_server.route("/other", "other")
    url = http_server.url("/feed")

    async def one_after_another(shared: SharedFetches) -> list[Fetched]:
        answers = [await shared.fetch(url, source_id=f"us-{n}") for n in range(3)]
        await shared.fetch(http_server.url("/other"))
        return answers

    answers = in_batch(one_after_another)

    assert http_server.hits("/feed") == 1 and http_server.hits("/other") == 1
    assert {answer.body for answer in answers} == {FEED.encode()}


def test_a_pages_answer_is_let_go_once_every_caller_counted_on_has_it(http_server: LocalServer) -> None:
    """A batch of thousands of pages must not hold every body until it ends: a URL's answer
    goes once the callers expected for it have theirs; an uncounted URL stays for the batch."""
    http_server.route("/feed", FEED)
    http_server.route("/item", "item")
    feed, item = http_server.url("/feed"), http_server.url("/item")

    async def go() -> tuple[list[int], int]:
        settings = HttpSettings(timeout=5)
        async with Fetcher(build_client(settings), settings) as fetcher:
            shared = SharedFetches(fetcher, expected={feed: 2})
            held = []
            for n in range(2):
                await shared.fetch(feed, source_id=f"us-{n}")
                await shared.fetch(item, source_id=f"us-{n}")
                held.append(shared.held)
            await shared.fetch(feed, source_id="late")  # not counted on: asks again
            return held, shared.requests

    held, requests = asyncio.run(go())
    assert held == [2, 1]  # after the second expected caller, only the uncounted item is held
    assert http_server.hits("/feed") == 2 and http_server.hits("/item") == 1 and requests == 3


def test_a_caller_holding_the_answers_etag_gets_not_modified(http_server: LocalServer) -> None:
    http_server.route("/feed", FEED, etag='"v2"', last_modified=LAST_MODIFIED)
    url = http_server.url("/feed")

    async def three(shared: SharedFetches) -> list[Fetched]:
        return [
            await shared.fetch(url),
            await shared.fetch(url, validators=Validators('"v2"'), source_id="us-ml"),
            await shared.fetch(url, validators=Validators('"v1"', LAST_MODIFIED), source_id="us-ne"),
        ]

    first, current, stale = in_batch(three)

    assert http_server.hits("/feed") == 1
    assert current.not_modified and current.body == b"" and current.elapsed == 0
    assert current.validators == first.validators == Validators('"v2"', LAST_MODIFIED)
    assert (current.url, current.final_url, current.content_type) == (
        first.url,
        first.final_url,
        first.content_type,
    )
    # Another ETag means another version, whatever Last-Modified says.
    assert stale == first and stale.status == 200


def test_last_modified_decides_only_where_there_is_no_etag(http_server: LocalServer) -> None:
    http_server.route("/plain", FEED, last_modified=LAST_MODIFIED)
    http_server.route("/tagged", FEED, etag='"v2"', last_modified=LAST_MODIFIED)
    holding = Validators(last_modified=LAST_MODIFIED)

    async def both(shared: SharedFetches) -> list[Fetched]:
        await shared.fetch(http_server.url("/plain"))
        await shared.fetch(http_server.url("/tagged"))
        return [
            await shared.fetch(http_server.url("/plain"), validators=holding),
            await shared.fetch(http_server.url("/tagged"), validators=holding),
            await shared.fetch(http_server.url("/plain"), validators=Validators()),
        ]

    plain, tagged, empty = in_batch(both)

    assert plain.not_modified and plain.validators == holding
    assert tagged.status == 200 and tagged.body == FEED.encode()
    assert empty.status == 200
    assert http_server.hits("/plain") == http_server.hits("/tagged") == 1


def test_a_not_modified_answer_serves_only_the_same_validators(http_server: LocalServer) -> None:
    http_server.route("/feed", FEED, etag='"v1"', delay=0.2)
    url = http_server.url("/feed")
    v1, v0 = Validators('"v1"'), Validators('"v0"')

    async def mixed(shared: SharedFetches) -> tuple[list[Fetched], int]:
        calls = [
            shared.fetch(url, validators=v1, source_id="us-ml"),
            shared.fetch(url, source_id="us-ne"),
            shared.fetch(url, validators=v1, source_id="us-bf"),
            shared.fetch(url, source_id="us-td"),
            shared.fetch(url, validators=v0, source_id="us-sd"),
        ]
        answers = list(await asyncio.gather(*calls))
        answers.append(await shared.fetch(url, validators=v0))
        return answers, shared.requests

    answers, requests = in_batch(mixed)

    assert [answer.status for answer in answers] == [304, 200, 304, 200, 200, 200]
    # The 304 to "v1", then one unconditional request that every other caller shares.
    assert http_server.hits("/feed") == requests == 2
    assert "If-None-Match" not in http_server.requests[1].headers
    assert all(answer.url == url for answer in answers)


def test_a_failure_reaches_every_caller_as_its_own_error(http_server: LocalServer) -> None:
    http_server.route("/feed", "oops", status=500, delay=0.2)
    url = http_server.url("/feed")

    async def four(shared: SharedFetches) -> list[FetchError]:
        calls = (shared.fetch(url, source_id=f"us-{n}") for n in range(3))
        errors = list(await asyncio.gather(*calls, return_exceptions=True))
        with pytest.raises(FetchError) as late:
            await shared.fetch(url, source_id="late")
        return [*(error for error in errors if isinstance(error, FetchError)), late.value]

    errors = in_batch(four)

    assert http_server.hits("/feed") == 1
    assert [error.source_id for error in errors] == ["us-0", "us-1", "us-2", "late"]
    assert len({id(error) for error in errors}) == 4
    for error in errors:
        assert type(error) is FetchError
        assert (error.message, error.status, error.url) == ("HTTP 500 Internal Server Error", 500, url)
        assert str(error) == f"{error.source_id} {url}: HTTP 500 Internal Server Error"


def test_error_copies_keep_their_kind_and_details(http_server: LocalServer) -> None:
    http_server.route("/busy", "slow down", status=429, headers={"Retry-After": "30"})
    http_server.route("/refused", "no", status=403)

    async def both(shared: SharedFetches) -> list[BaseException | Fetched]:
        calls = [shared.fetch(http_server.url(path), source_id=path) for path in ["/busy"] * 2]
        calls += [shared.fetch(http_server.url(path), source_id=path) for path in ["/refused"] * 2]
        return await asyncio.gather(*calls, return_exceptions=True)

    busy, busy_again, refused, refused_again = in_batch(both)

    assert http_server.hits("/busy") == http_server.hits("/refused") == 1
    for error in (busy, busy_again):
        assert isinstance(error, RetryLaterError)
        assert (error.retry_after, error.status, error.source_id) == (30.0, 429, "/busy")
    for error in (refused, refused_again):
        assert isinstance(error, BlockedError) and error.status == 403
    assert busy is not busy_again and refused is not refused_again


def test_a_cancelled_caller_does_not_cancel_the_others(http_server: LocalServer) -> None:
    http_server.route("/feed", FEED, delay=0.4)
    url = http_server.url("/feed")

    async def cancel_first(shared: SharedFetches) -> Fetched:
        first = asyncio.create_task(shared.fetch(url, source_id="us-ml"))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(shared.fetch(url, source_id="us-ne"))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        answer = await second
        # The request the cancelled caller started is still the batch's answer.
        assert await shared.fetch(url) == answer
        return answer

    answer = in_batch(cancel_first)

    assert answer.status == 200 and answer.body == FEED.encode()
    assert http_server.hits("/feed") == 1


def test_the_answer_keeps_the_url_each_caller_asked_for(http_server: LocalServer) -> None:
    http_server.route("/old", status=301, headers={"Location": "/feed"})
    http_server.route("/feed", FEED)

    async def both(shared: SharedFetches) -> list[Fetched]:
        return [await shared.fetch(http_server.url("/old")), await shared.fetch(http_server.url("/old"))]

    first, second = in_batch(both)

    assert first.url == second.url == http_server.url("/old")
    assert first.final_url == second.final_url == http_server.url("/feed")
    assert http_server.hits("/old") == 1


def test_an_error_that_is_not_a_fetch_error_is_not_swallowed() -> None:
    class Broken:
        async def fetch(
            self, url: str, *, validators: Validators | None = None, source_id: str | None = None
        ) -> Fetched:
            raise ValueError("bug")

    async def go() -> None:
        await SharedFetches(Broken()).fetch("https://example.org/")

    with pytest.raises(ValueError, match="bug"):
        asyncio.run(go())
