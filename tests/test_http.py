"""The fetcher against a real server on 127.0.0.1: every failure becomes a clear FetchError."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import brotli  # type: ignore[import-untyped]
import pytest

from monitor.errors import BlockedError, FetchError
from monitor.http import Fetcher, HttpSettings, RetryLaterError, build_client, looks_blocked
from monitor.models import Fetched, Validators
from tests.support.httpserver import LocalServer

PAGE = "<html><head><title>Mali</title></head><body>Do not travel.</body></html>"
CLOUDFLARE = (
    "<!DOCTYPE html><html lang='en-US'><head><title>Just a moment...</title></head>"
    "<body><script>window._cf_chl_opt={cvId: '3'};</script></body></html>"
)


def fetch(url: str, settings: HttpSettings | None = None, **kwargs: Any) -> Fetched:
    settings = settings or HttpSettings()

    async def run() -> Fetched:
        async with Fetcher(build_client(settings), settings) as fetcher:
            return await fetcher.fetch(url, **kwargs)

    return asyncio.run(run())


def fetch_error(url: str, settings: HttpSettings | None = None) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, settings, source_id="uk-mali")
    assert caught.value.source_id == "uk-mali"
    assert caught.value.url == url
    return caught.value


def raw(status_line: str, headers: dict[str, str], body: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
    """A handler that writes exactly these bytes and closes the connection."""

    def handle(handler: BaseHTTPRequestHandler) -> None:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        handler.wfile.write(f"HTTP/1.1 {status_line}\r\n{head}\r\n".encode() + body)
        handler.wfile.flush()
        handler.close_connection = True

    return handle


def test_ok_body_and_validators(http_server: LocalServer) -> None:
    http_server.route("/mali", PAGE, etag='"v1"', last_modified="Tue, 01 Oct 2024 10:00:00 GMT")

    fetched = fetch(http_server.url("/mali"))

    assert fetched.status == 200
    assert fetched.body == PAGE.encode()
    assert fetched.content_type == "text/html; charset=utf-8"
    assert fetched.final_url == fetched.url == http_server.url("/mali")
    assert fetched.validators == Validators('"v1"', "Tue, 01 Oct 2024 10:00:00 GMT")
    assert 0 < fetched.elapsed < 5


def test_etag_makes_the_second_fetch_conditional(http_server: LocalServer) -> None:
    http_server.route("/mali", PAGE, etag='"v1"')
    first = fetch(http_server.url("/mali"))

    second = fetch(http_server.url("/mali"), validators=first.validators)

    assert "If-None-Match" not in http_server.requests[0].headers
    assert http_server.requests[-1].headers["If-None-Match"] == '"v1"'
    assert second.not_modified
    assert second.body == b""
    assert second.validators.etag == '"v1"'


def test_last_modified_makes_the_second_fetch_conditional(http_server: LocalServer) -> None:
    stamp = "Tue, 01 Oct 2024 10:00:00 GMT"
    http_server.route("/mali", PAGE, last_modified=stamp)
    first = fetch(http_server.url("/mali"))

    second = fetch(http_server.url("/mali"), validators=first.validators)

    assert http_server.requests[-1].headers["If-Modified-Since"] == stamp
    assert second.status == 304
    assert second.validators == Validators(None, stamp)


def test_304_without_validators_keeps_the_ones_sent(http_server: LocalServer) -> None:
    http_server.route("/mali", status=304)
    sent = Validators('"v7"', "Tue, 01 Oct 2024 10:00:00 GMT")

    fetched = fetch(http_server.url("/mali"), validators=sent)

    assert fetched.not_modified
    assert fetched.validators == sent


def test_redirect_is_followed(http_server: LocalServer) -> None:
    http_server.route("/old", status=301, headers={"Location": "/new"})
    http_server.route("/new", PAGE)

    fetched = fetch(http_server.url("/old"))

    assert fetched.final_url == http_server.url("/new")
    assert fetched.url == http_server.url("/old")
    assert fetched.body == PAGE.encode()


def test_redirect_body_is_not_decoded(http_server: LocalServer) -> None:
    http_server.route(
        "/old", b"not gzip at all", status=302, headers={"Location": "/new", "Content-Encoding": "gzip"}
    )
    http_server.route("/new", PAGE)

    assert fetch(http_server.url("/old")).body == PAGE.encode()


def test_redirect_loop_fails(http_server: LocalServer) -> None:
    http_server.route("/a", status=302, headers={"Location": "/b"})
    http_server.route("/b", status=302, headers={"Location": "/a"})

    error = fetch_error(http_server.url("/a"))

    assert "too many redirects" in error.message
    assert http_server.hits("/a") + http_server.hits("/b") == HttpSettings().max_redirects + 1


@pytest.mark.parametrize("target", ["ftp://example.org/advice", "file:///etc/passwd"])
def test_redirect_to_another_scheme_fails(http_server: LocalServer, target: str) -> None:
    http_server.route("/away", status=302, headers={"Location": target})

    error = fetch_error(http_server.url("/away"))

    assert "not http or https" in error.message


def test_non_http_url_fails_before_any_request() -> None:
    error = fetch_error("file:///etc/passwd")

    assert error.message == "not an absolute http or https URL"


def test_slow_answer_times_out(http_server: LocalServer) -> None:
    http_server.route("/slow", PAGE, delay=2)
    started = time.monotonic()

    error = fetch_error(http_server.url("/slow"), HttpSettings(timeout=0.3))

    assert error.message == "timed out after 0.3s"
    assert time.monotonic() - started < 1.5


def test_trickling_body_hits_the_total_deadline(http_server: LocalServer) -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.05)

    http_server.route_handler("/trickle", trickle)
    started = time.monotonic()

    error = fetch_error(http_server.url("/trickle"), HttpSettings(timeout=0.4))

    assert "timed out after 0.4s" in error.message
    assert time.monotonic() - started < 1.5


def test_declared_length_over_the_cap_fails(http_server: LocalServer) -> None:
    http_server.route("/big", b"x" * 2000)

    error = fetch_error(http_server.url("/big"), HttpSettings(max_body=1000))

    assert error.message == "body larger than 1000 bytes"
    assert error.status == 200


def test_chunked_body_over_the_cap_fails(http_server: LocalServer) -> None:
    def chunked(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(50):
            handler.wfile.write(b"64\r\n" + b"x" * 100 + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    http_server.route_handler("/chunked", chunked)

    assert fetch(http_server.url("/chunked"), HttpSettings(max_body=5000)).body == b"x" * 5000
    error = fetch_error(http_server.url("/chunked"), HttpSettings(max_body=4999))
    assert error.message == "body larger than 4999 bytes"


def test_gzip_bomb_is_caught_by_the_decoded_size(http_server: LocalServer) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 100_000
    http_server.route("/bomb", bomb, headers={"Content-Encoding": "gzip"})

    error = fetch_error(http_server.url("/bomb"), HttpSettings(max_body=1_000_000))

    assert error.message == "body larger than 1000000 bytes"


def test_brotli_bomb_is_caught_by_the_decoded_size(http_server: LocalServer) -> None:
    bomb = brotli.compress(b"\0" * 20_000_000, quality=5)
    assert len(bomb) < 100
    http_server.route("/bomb", bomb, headers={"Content-Encoding": "br"})

    error = fetch_error(http_server.url("/bomb"), HttpSettings(max_body=1_000_000))

    assert error.message == "body larger than 1000000 bytes"


def raw_deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush()


@pytest.mark.parametrize(
    ("coding", "compress"),
    [("br", brotli.compress), ("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate)],
)
def test_compressed_body_is_decoded(
    http_server: LocalServer, coding: str, compress: Callable[[bytes], bytes]
) -> None:
    http_server.route("/page", compress(PAGE.encode()), headers={"Content-Encoding": coding})

    fetched = fetch(http_server.url("/page"))

    assert fetched.body == PAGE.encode()
    assert "br" in http_server.requests[-1].headers["Accept-Encoding"]


def test_corrupt_compressed_body_fails(http_server: LocalServer) -> None:
    http_server.route("/page", b"this is not gzip", headers={"Content-Encoding": "gzip"})

    error = fetch_error(http_server.url("/page"))

    assert error.message.startswith("could not decode the gzip body")


def test_truncated_body_fails(http_server: LocalServer) -> None:
    http_server.route_handler("/cut", raw("200 OK", {"Content-Length": "1000"}, b"<html>only the start"))

    error = fetch_error(http_server.url("/cut"))

    assert "incomplete" in error.message


@pytest.mark.parametrize(
    ("status", "message"), [(500, "HTTP 500 Internal Server Error"), (404, "HTTP 404 Not Found")]
)
def test_http_error_status_fails(http_server: LocalServer, status: int, message: str) -> None:
    http_server.route("/page", "oops", status=status)

    error = fetch_error(http_server.url("/page"))

    assert type(error) is FetchError
    assert (error.status, error.message) == (status, message)


def test_503_is_retry_later(http_server: LocalServer) -> None:
    http_server.route("/page", "down", status=503)

    error = fetch_error(http_server.url("/page"))

    assert isinstance(error, RetryLaterError)
    assert (error.status, error.message, error.retry_after) == (503, "HTTP 503 Service Unavailable", None)


def test_429_carries_retry_after(http_server: LocalServer) -> None:
    http_server.route("/page", "slow down", status=429, headers={"Retry-After": "120"})

    error = fetch_error(http_server.url("/page"))

    assert isinstance(error, RetryLaterError)
    assert (error.status, error.retry_after) == (429, 120)


def test_retry_after_as_a_date_is_read_against_the_server_date(http_server: LocalServer) -> None:
    http_server.route(
        "/page",
        status=503,
        headers={"Retry-After": "Wed, 21 Oct 2015 07:30:00 GMT", "Date": "Wed, 21 Oct 2015 07:28:00 GMT"},
    )

    error = fetch_error(http_server.url("/page"))

    assert isinstance(error, RetryLaterError)
    assert error.retry_after == 120


def test_403_is_blocked(http_server: LocalServer) -> None:
    http_server.route("/page", "<html>Forbidden</html>", status=403)

    error = fetch_error(http_server.url("/page"))

    assert isinstance(error, BlockedError)
    assert (error.status, error.message) == (403, "HTTP 403 Forbidden")


def test_cloudflare_challenge_with_200_is_blocked(http_server: LocalServer) -> None:
    http_server.route("/page", CLOUDFLARE)

    error = fetch_error(http_server.url("/page"))

    assert isinstance(error, BlockedError)
    assert error.message == "Cloudflare challenge page"


def test_compressed_challenge_with_503_is_blocked_not_retry_later(http_server: LocalServer) -> None:
    http_server.route(
        "/page", gzip.compress(CLOUDFLARE.encode()), status=503, headers={"Content-Encoding": "gzip"}
    )

    error = fetch_error(http_server.url("/page"))

    assert isinstance(error, BlockedError)
    assert error.message == "Cloudflare challenge page (HTTP 503)"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<title>Attention Required! | Cloudflare</title>", "Cloudflare block page"),
        (b"<TITLE>Access Denied</TITLE> Reference&#32;&#35;18&#46;5c", "Akamai block page"),
        (b"<script src='/_Incapsula_Resource?SWJIYLWA=1'></script>", "Incapsula block page"),
        (b"<script src='https://ct.captcha-delivery.com/c.js'></script>", "DataDome challenge page"),
        (b"<div id='px-captcha'></div>", "PerimeterX challenge page"),
        (b"<html>Access denied to the border region. Reference #12</html>", None),
        (PAGE.encode(), None),
    ],
)
def test_looks_blocked(body: bytes, reason: str | None) -> None:
    assert looks_blocked(200, body) == reason


def test_connection_refused_fails() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    error = fetch_error(f"http://127.0.0.1:{port}/page")

    assert error.message == "connection refused"
    assert error.status is None


def test_unknown_host_fails() -> None:
    error = fetch_error("http://no-such-host.invalid/page")

    assert error.message.startswith("could not resolve the host name")


def test_user_agent_names_the_project(http_server: LocalServer) -> None:
    http_server.route("/page", PAGE)

    fetch(http_server.url("/page"))

    agent = http_server.requests[-1].headers["User-Agent"]
    assert agent.startswith("advisory-monitor/")
    assert "github.com/advisory-monitor" in agent


class InFlight:
    """A handler that holds each answer for ``hold`` seconds and records the peak of concurrent ones."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.hold)
        with self.lock:
            self.now -= 1
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")


def test_per_host_limit_holds_one_host_back_but_not_another(http_server: LocalServer) -> None:
    busy, other = InFlight(0.3), InFlight(0.3)
    http_server.route_handler("/busy", busy)
    settings = HttpSettings(per_host=2)

    async def timed(fetcher: Fetcher, url: str) -> float:
        await fetcher.fetch(url)
        return time.monotonic()

    async def run(other_url: str) -> tuple[list[float], list[float]]:
        async with Fetcher(build_client(settings), settings) as fetcher:
            jobs = [timed(fetcher, http_server.url("/busy")) for _ in range(6)]
            jobs += [timed(fetcher, other_url) for _ in range(2)]
            done = await asyncio.gather(*jobs)
        return done[:6], done[6:]

    with LocalServer() as second:
        second.route_handler("/other", other)
        started = time.monotonic()
        busy_done, other_done = asyncio.run(run(second.url("/other")))

    assert busy.peak == 2
    assert other.peak == 2
    assert max(busy_done) - started >= 0.85  # three rounds of two
    assert max(other_done) - started < 0.75  # did not queue behind the busy host


def test_not_modified_answers_keep_the_connection_for_the_next_request() -> None:
    """A 304 hands its connection back: 1 connection for 1 fetch and 30 conditional ones."""
    connections = 0
    handled: list[asyncio.Task[Any]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        task = asyncio.current_task()
        assert task is not None
        handled.append(task)
        try:
            while (head := await reader.readuntil(b"\r\n\r\n")) is not None:
                if b"if-none-match" in head.lower():
                    writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n')
                else:
                    writer.write(b'HTTP/1.1 200 OK\r\nETag: "v1"\r\nContent-Length: 4\r\n\r\nbody')
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass  # the client closed the connection
        writer.close()
        await writer.wait_closed()

    async def go() -> list[int]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/page"
        settings = HttpSettings(timeout=5)
        async with server:
            async with Fetcher(build_client(settings), settings) as fetcher:
                first = await fetcher.fetch(url)
                statuses = [first.status]
                for _ in range(30):
                    statuses.append((await fetcher.fetch(url, validators=first.validators)).status)
            await asyncio.wait_for(asyncio.gather(*handled), 5)  # each connection seen to its end
        return statuses

    statuses = asyncio.run(go())
    assert statuses == [200] + [304] * 30
    assert connections == 1
