"""The read-only web server on a real socket, asked with a real HTTP client: routes, parameters,
HEAD, conditional GET, the token, headers, failures, stopping and IPv6."""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import feedparser
import httpx
import pytest

from monitor.errors import MonitorError
from monitor.report.history import History, Window
from monitor.report.web import HTML_POLICY, make_app, needs_token, serve
from tests.support.histories import HOSTILE, hostile_history, mali_history

TOKEN = "s3cret-token"


@dataclass
class Data:
    """What the app reads: the Mali history narrowed to the window's countries, and a version."""

    version: str = "v1"
    loads: list[Window] = field(default_factory=list)
    fail: bool = False
    history: Callable[[], History] = mali_history

    def load(self, window: Window) -> History:
        self.loads.append(window)
        if self.fail:
            raise RuntimeError(f"the database is gone {HOSTILE}")
        history = replace(self.history(), window=window)
        if not window.countries:
            return history
        changes = tuple(c for c in history.changes if set(c.countries) & set(window.countries))
        return replace(history, changes=changes)


def listing(history: History) -> str:
    return "<!doctype html><ul>" + "".join(f"<li>{change.id}</li>" for change in history.changes) + "</ul>"


@dataclass
class Running:
    url: str
    stop: threading.Event
    thread: threading.Thread


def start(data: Data, *, token: str | None = None, host: str = "127.0.0.1") -> Running:
    """Serve in a thread; returns once the server accepts connections."""
    app = make_app(load=data.load, version=lambda: data.version, render_html=listing, token=token)
    stop = threading.Event()
    told: queue.Queue[str | BaseException] = queue.Queue()

    def run() -> None:
        try:
            serve(app, host, 0, ready=told.put, stop=stop)
        except BaseException as exc:
            told.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    answer = told.get(timeout=10)
    if isinstance(answer, BaseException):
        raise answer
    return Running(answer, stop, thread)


@pytest.fixture
def data() -> Data:
    return Data()


@pytest.fixture
def servers() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for running in started:
        running.stop.set()
        running.thread.join(timeout=10)
        assert not running.thread.is_alive()


@pytest.fixture
def url(data: Data, servers: list[Running]) -> str:
    servers.append(start(data))
    return servers[-1].url


@pytest.fixture
def guarded(data: Data, servers: list[Running]) -> str:
    servers.append(start(data, token=TOKEN))
    return servers[-1].url


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].strip("/"))


def ids_in(page: httpx.Response) -> list[str]:
    return [item.split("</li>")[0] for item in page.text.split("<li>")[1:]]


# Routes ----------------------------------------------------------------------------------------


def test_the_report_page(url: str, data: Data) -> None:
    page = httpx.get(url)

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert ids_in(page) == [str(n) for n in range(1, 9)]
    assert data.loads == [Window()]
    assert page.headers["content-security-policy"] == HTML_POLICY
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["etag"].startswith('W/"')


def test_the_report_takes_countries_and_dates(url: str, data: Data) -> None:
    query = [("country", "ml"), ("country", "BF"), ("since", "2025-11-01"), ("until", "2025-11-07")]

    page = httpx.get(url, params=query)

    assert page.status_code == 200
    assert data.loads == [
        Window(
            since=datetime(2025, 11, 1, tzinfo=UTC),
            until=datetime(2025, 11, 7, 23, 59, 59, 999999, tzinfo=UTC),
            countries=("ML", "BF"),
        )
    ]


def test_blank_parameters_are_no_parameters(url: str, data: Data) -> None:
    assert httpx.get(url, params={"country": "", "since": "", "until": " "}).status_code == 200
    assert data.loads == [Window()]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"country": "Mali"}, "'MALI' is not a country code"),
        ({"since": "yesterday"}, "'yesterday' is not a date"),
        ({"since": "2025-11-07", "until": "2025-11-01"}, "until (2025-11-01) is before since (2025-11-07)"),
        ({"contry": "ML"}, "unknown parameter 'contry'; allowed: country, since, until"),
        ([("since", "2025-11-01"), ("since", "2025-11-02")], "since is given 2 times; give it once"),
        ([("country", "ML")] * 60, "more than 50 query parameters"),
    ],
)
def test_bad_parameters_are_a_400_with_one_line(
    url: str, data: Data, query: dict[str, str] | list[tuple[str, str]], message: str
) -> None:
    page = httpx.get(url, params=query)

    assert page.status_code == 400
    assert page.headers["content-type"] == "text/plain; charset=utf-8"
    assert message in page.text
    assert page.text.count("\n") == 1
    assert data.loads == []


@pytest.mark.parametrize("name", ["all", "ML", "ml"])
def test_the_feeds(url: str, data: Data, name: str) -> None:
    answer = httpx.get(f"{url}feeds/{name}.atom")

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in answer.headers
    feed = feedparser.parse(answer.content)
    assert not feed.bozo
    canonical = "all" if name == "all" else "ML"
    links = {link.rel: link.href for link in feed.feed.links}
    assert links["self"] == f"{url}feeds/{canonical}.atom"
    assert links["alternate"] == (url if name == "all" else f"{url}?country=ML#country-ML")
    assert [entry.id.rsplit("/", 1)[1] for entry in feed.entries] == ["8", "6", "5", "4", "3", "2", "1"]
    assert data.loads == [Window(countries=() if name == "all" else ("ML",))]


def test_a_country_feed_has_only_that_country(url: str) -> None:
    feed = feedparser.parse(httpx.get(f"{url}feeds/bf.atom").content)

    assert not feed.bozo
    assert feed.feed.title == "Travel advisory changes — Burkina Faso"
    assert feed.entries == []


def test_healthz(url: str, data: Data) -> None:
    answer = httpx.get(f"{url}healthz")

    assert (answer.status_code, answer.text) == (200, "ok\n")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert data.loads == []


@pytest.mark.parametrize(
    "path",
    [
        "nope",
        "feeds/mali.atom",
        "feeds/m1.atom",
        "feeds/.atom",
        "feeds/all.rss",
        "feeds/ML.atom/",
        "index.html",
    ],
)
def test_anything_else_is_404(url: str, path: str) -> None:
    answer = httpx.get(url + path)

    assert (answer.status_code, answer.text) == (404, "not found\n")
    assert answer.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_are_405(url: str, data: Data, method: str) -> None:
    answer = httpx.request(method, url + "feeds/all.atom")

    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"
    assert data.loads == []
    assert httpx.request(method, url + "nope").status_code == 404


@pytest.mark.parametrize("path", ["", "feeds/all.atom", "healthz"])
def test_head_gives_the_headers_only(url: str, path: str) -> None:
    got = httpx.get(url + path)

    head = httpx.head(url + path)

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers.get("etag") == got.headers.get("etag")
    assert head.headers["content-type"] == got.headers["content-type"]


# Conditional GET -------------------------------------------------------------------------------


def test_a_current_etag_gets_304_without_reading(url: str, data: Data) -> None:
    first = httpx.get(url + "feeds/ML.atom")
    tag = first.headers["etag"]

    again = httpx.get(url + "feeds/ML.atom", headers={"If-None-Match": tag})
    strong = httpx.get(url + "feeds/ML.atom", headers={"If-None-Match": f'"x", {tag.removeprefix("W/")}'})

    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
    assert again.headers["cache-control"] == "no-cache"
    assert again.headers["x-content-type-options"] == "nosniff"
    assert strong.status_code == 304
    assert len(data.loads) == 1


def test_the_etag_changes_with_the_data_and_the_question(url: str, data: Data) -> None:
    tag = httpx.get(url + "feeds/ML.atom").headers["etag"]

    assert httpx.get(url + "feeds/ml.atom", headers={"If-None-Match": tag}).status_code == 304
    assert httpx.get(url + "feeds/all.atom").headers["etag"] != tag
    assert httpx.get(url, params={"country": "ML"}).headers["etag"] != tag
    assert httpx.get(url + "feeds/ML.atom", headers={"If-None-Match": '"other"'}).status_code == 200
    data.version = "v2"
    renewed = httpx.get(url + "feeds/ML.atom", headers={"If-None-Match": tag})
    assert renewed.status_code == 200
    assert renewed.headers["etag"] != tag


# The token -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "feeds/all.atom", "feeds/ML.atom"])
def test_without_the_token_is_401(guarded: str, data: Data, path: str) -> None:
    for headers, params in [
        ({}, {}),
        ({"Authorization": "Bearer wrong"}, {}),
        ({"Authorization": f"Basic {TOKEN}"}, {}),
        ({}, {"token": "wrong"}),
        ({}, {"token": ""}),
        ({"Authorization": f"Bearer {TOKEN}x"}, {}),
    ]:
        answer = httpx.get(guarded + path, headers=headers, params=params)
        assert answer.status_code == 401, (headers, params)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in answer.text
    assert data.loads == []


@pytest.mark.parametrize("path", ["", "feeds/all.atom", "feeds/ML.atom"])
def test_the_token_as_a_header_or_a_parameter(guarded: str, path: str) -> None:
    by_header = httpx.get(guarded + path, headers={"Authorization": f"Bearer {TOKEN}"})
    by_query = httpx.get(guarded + path, params={"token": TOKEN})

    assert by_header.status_code == by_query.status_code == 200
    assert TOKEN not in by_query.text  # the feed's links are made without the query


def test_the_token_is_checked_before_the_etag(guarded: str) -> None:
    tag = httpx.get(guarded, params={"token": TOKEN}).headers["etag"]

    assert httpx.get(guarded, headers={"If-None-Match": tag}).status_code == 401
    assert httpx.get(guarded, params={"token": TOKEN}, headers={"If-None-Match": tag}).status_code == 304


def test_healthz_is_open_without_the_token(guarded: str) -> None:
    assert httpx.get(guarded + "healthz").status_code == 200


def test_the_token_is_never_logged(guarded: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="monitor.report.web")
    httpx.get(guarded + "feeds/ML.atom", params={"token": TOKEN})
    httpx.get(guarded, params={"token": "guess"})
    httpx.get(guarded, headers={"Authorization": f"Bearer {TOKEN}"})
    with socket.create_connection(("127.0.0.1", port_of(guarded))) as raw:
        raw.sendall(f"GET /?token={TOKEN} extra HTTP/1.1\r\n\r\n".encode())  # a malformed request line
        raw.recv(4096)

    logged = "\n".join(
        record.getMessage() for record in caplog.records if record.name == "monitor.report.web"
    )
    assert "GET /feeds/ML.atom 200" in logged
    assert "GET / 401" in logged
    assert "token=…" in logged  # the malformed request line, quoted but redacted
    assert TOKEN not in logged
    assert "guess" not in logged


# Failures, stopping, addresses -----------------------------------------------------------------


def test_a_failing_load_is_a_generic_500(url: str, data: Data, caplog: pytest.LogCaptureFixture) -> None:
    data.fail = True

    answers = [httpx.get(url), httpx.get(url + "feeds/all.atom")]

    for answer in answers:
        assert answer.status_code == 500
        assert answer.text == "the report cannot be read now; see the server's log\n"
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    failures = [
        record for record in caplog.records if record.name == "monitor.report.web" and record.exc_info
    ]
    assert len(failures) == 2
    assert "the database is gone" in caplog.text


def test_a_failing_renderer_or_version_is_a_500(data: Data, servers: list[Running]) -> None:
    def broken() -> str:
        raise RuntimeError("no version")

    app = make_app(load=data.load, version=broken, render_html=listing)
    stop = threading.Event()
    told: queue.Queue[str] = queue.Queue()
    thread = threading.Thread(
        target=serve, args=(app, "127.0.0.1", 0), kwargs={"ready": told.put, "stop": stop}
    )
    thread.start()
    servers.append(Running(told.get(timeout=10), stop, thread))

    answer = httpx.get(servers[-1].url + "feeds/all.atom")

    assert answer.status_code == 500
    assert "no version" not in answer.text
    assert httpx.get(servers[-1].url + "healthz").status_code == 200


def test_hostile_text_reaches_the_feed_as_text(data: Data, servers: list[Running]) -> None:
    data.history = hostile_history
    servers.append(start(data))

    feed = feedparser.parse(httpx.get(servers[-1].url + "feeds/all.atom").content)

    assert not feed.bozo
    assert feed.entries[0].title == f"[CRITICAL] Mali — {HOSTILE}: leave now"


def test_setting_stop_closes_the_server(data: Data) -> None:
    running = start(data)
    port = port_of(running.url)
    assert httpx.get(running.url + "healthz").status_code == 200

    running.stop.set()
    running.thread.join(timeout=10)

    assert not running.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.url + "healthz")
    with socket.socket() as again:  # nothing listens on the port any more
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen()


def test_ipv6_loopback(data: Data, servers: list[Running]) -> None:
    servers.append(start(data, host="::1"))
    url = servers[-1].url

    assert url.startswith("http://[::1]:")
    assert httpx.get(url + "healthz").text == "ok\n"
    feed = feedparser.parse(httpx.get(url + "feeds/ML.atom").content)
    assert feed.feed.links[0].href == f"{url}feeds/ML.atom"
    servers.append(start(data, host="[::1]"))
    assert servers[-1].url.startswith("http://[::1]:")


def test_an_address_in_use_is_one_line(data: Data, url: str) -> None:
    port = port_of(url)
    app = make_app(load=data.load, version=lambda: "v", render_html=listing)

    with pytest.raises(
        MonitorError, match=rf"^cannot serve the report on 127\.0\.0\.1 port {port}: address already in use$"
    ):
        serve(app, "127.0.0.1", port)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", False),
        ("127.1.2.3", False),
        ("::1", False),
        ("[::1]", False),
        ("localhost", False),
        ("LOCALHOST", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", True),
        ("::", True),
        ("", True),
        ("192.168.1.10", True),
        ("fe80::1", True),
        ("example.org", True),
        ("localhost.example.org", True),
    ],
)
def test_needs_token(host: str, expected: bool) -> None:
    assert needs_token(host) is expected
