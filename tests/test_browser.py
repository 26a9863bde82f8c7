"""The browser fetcher driving the system Chromium against a real server on 127.0.0.1.

Without a Chromium on the machine the module is skipped, except when ``CI=true``: CI installs
one, so there its absence is a failure.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.browser import BrowserFetcher, find_browser, launch_args
from monitor.config import loads
from monitor.errors import BlockedError, FetchError
from monitor.http import Fetcher, HttpSettings, RetryLaterError, build_client
from monitor.models import Fetched, Outcome, Validators
from monitor.pipeline import check_sources
from monitor.store import Store
from tests.support.httpserver import LocalServer


def _installed_chromium() -> tuple[str | None, str]:
    try:
        return find_browser(), ""
    except FetchError as exc:
        return None, exc.message


CHROMIUM, _MISSING = _installed_chromium()
if CHROMIUM is None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true, and CI installs Chromium, but: {_MISSING}", pytrace=False)
    pytest.skip(_MISSING, allow_module_level=True)

ADVICE = "Do not travel to Mali."
# The advice arrives from a second request, 300 ms after the page loaded: it is nowhere in the
# HTML the server sends, not even inside the script.
JS_PAGE = """<!DOCTYPE html><html><head><title>Mali travel advice</title></head>
<body><h1>Mali</h1><div id="advice"></div>
<script>
setTimeout(function () {
  fetch("/advice.json").then(function (r) { return r.json(); }).then(function (data) {
    document.getElementById("advice").innerHTML = "<p>" + data.text + "</p>";
  });
}, 300);
</script></body></html>"""
CLOUDFLARE = (
    "<!DOCTYPE html><html lang='en-US'><head><title>Just a moment...</title></head>"
    "<body><script>window._cf_chl_opt={cvId: '3'};</script></body></html>"
)
PLAIN = (
    "<html><head><title>Mali</title></head>"
    "<body><p>Exercise caution.</p><script src='/app.js'></script></body></html>"
)


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for the module, so that one browser serves most tests."""
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture(scope="module")
def browser(runner: asyncio.Runner) -> Iterator[BrowserFetcher]:
    fetcher = BrowserFetcher(HttpSettings(timeout=10))
    yield fetcher
    runner.run(fetcher.aclose())


@pytest.fixture(scope="module")
def quick(runner: asyncio.Runner) -> Iterator[BrowserFetcher]:
    """A browser with tight limits: fetches give up after 2 seconds, pages above 20 KB are refused."""
    fetcher = BrowserFetcher(HttpSettings(timeout=2, max_body=20_000))
    yield fetcher
    runner.run(fetcher.aclose())


@pytest.fixture
def js_server(http_server: LocalServer) -> LocalServer:
    http_server.route("/mali", JS_PAGE)
    http_server.route("/advice.json", f'{{"text": "{ADVICE}"}}', content_type="application/json")
    return http_server


def browser_error(runner: asyncio.Runner, fetcher: BrowserFetcher, url: str, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        runner.run(fetcher.fetch(url, source_id="fr-mali", **kwargs))
    assert caught.value.source_id == "fr-mali"
    assert caught.value.url == url
    return caught.value


def http_fetch(url: str) -> Fetched:
    async def go() -> Fetched:
        settings = HttpSettings(timeout=5)
        async with Fetcher(build_client(settings), settings) as fetcher:
            return await fetcher.fetch(url)

    return asyncio.run(go())


def headers_of(server: LocalServer, path: str) -> list[dict[str, str]]:
    """The headers of each request for ``path``, names lower-cased (Chromium mixes cases)."""
    return [{k.lower(): v for k, v in r.headers.items()} for r in server.requests if r.path == path]


def test_javascript_content_is_rendered(
    runner: asyncio.Runner, browser: BrowserFetcher, js_server: LocalServer
) -> None:
    url = js_server.url("/mali")
    fetched = runner.run(browser.fetch(url, wait_for="#advice p"))

    assert ADVICE in fetched.body.decode("utf-8")
    assert (fetched.status, fetched.url, fetched.final_url) == (200, url, url)
    assert fetched.content_type == "text/html; charset=utf-8"
    # The point of the browser: the same page fetched over plain HTTP has no advice in it.
    assert ADVICE not in http_fetch(url).body.decode("utf-8")


def test_waits_for_the_network_to_settle_without_a_selector(
    runner: asyncio.Runner, browser: BrowserFetcher, js_server: LocalServer
) -> None:
    fetched = runner.run(browser.fetch(js_server.url("/mali")))
    assert ADVICE in fetched.body.decode("utf-8")


def test_user_agent_is_the_browsers_plus_the_project_token(
    runner: asyncio.Runner, browser: BrowserFetcher, http_server: LocalServer
) -> None:
    http_server.route("/ua", PLAIN)
    runner.run(browser.fetch(http_server.url("/ua"), wait_for="p"))
    [request] = headers_of(http_server, "/ua")
    agent = request["user-agent"]
    assert agent.startswith("Mozilla/5.0 ")
    assert " Chrome/" in agent
    assert "HeadlessChrome" not in agent
    assert agent.endswith(" " + HttpSettings().user_agent)


def test_403_is_blocked(runner: asyncio.Runner, browser: BrowserFetcher, http_server: LocalServer) -> None:
    http_server.route("/forbidden", "<html><body>Forbidden</body></html>", status=403)
    error = browser_error(runner, browser, http_server.url("/forbidden"), wait_for="#advice")
    assert isinstance(error, BlockedError)
    assert (error.status, error.message) == (403, "HTTP 403 Forbidden")


def test_challenge_page_with_200_is_blocked(
    runner: asyncio.Runner, browser: BrowserFetcher, http_server: LocalServer
) -> None:
    http_server.route("/challenge", CLOUDFLARE)
    error = browser_error(runner, browser, http_server.url("/challenge"))
    assert isinstance(error, BlockedError)
    assert (error.status, error.message) == (200, "Cloudflare challenge page")


def test_challenge_still_showing_when_the_selector_wait_ends_is_blocked(
    runner: asyncio.Runner, quick: BrowserFetcher, http_server: LocalServer
) -> None:
    http_server.route("/challenge", CLOUDFLARE)
    error = browser_error(runner, quick, http_server.url("/challenge"), wait_for="#advice p")
    assert isinstance(error, BlockedError)
    assert error.message == "Cloudflare challenge page"


ERRORS: dict[int, tuple[dict[str, str], type[FetchError], str]] = {
    404: ({}, FetchError, "HTTP 404 Not Found"),
    500: ({}, FetchError, "HTTP 500 Internal Server Error"),
    429: ({"Retry-After": "120"}, RetryLaterError, "HTTP 429 Too Many Requests"),
}


@pytest.mark.parametrize("status", sorted(ERRORS))
def test_http_errors_as_the_http_fetcher_reports_them(
    runner: asyncio.Runner, browser: BrowserFetcher, http_server: LocalServer, status: int
) -> None:
    headers, kind, message = ERRORS[status]
    http_server.route("/error", "<html><body>Sorry</body></html>", status=status, headers=headers)
    error = browser_error(runner, browser, http_server.url("/error"))
    assert type(error) is kind
    assert (error.status, error.message) == (status, message)
    if isinstance(error, RetryLaterError):
        assert error.retry_after == 120


def test_etag_makes_the_main_document_conditional(
    runner: asyncio.Runner, browser: BrowserFetcher, http_server: LocalServer
) -> None:
    http_server.route("/mali", PLAIN, etag='"v1"')
    http_server.route("/app.js", "document.title += '!';", content_type="text/javascript", etag='"v1"')
    url = http_server.url("/mali")

    first = runner.run(browser.fetch(url, wait_for="p"))
    assert (first.status, first.validators) == (200, Validators('"v1"', None))
    second = runner.run(browser.fetch(url, validators=first.validators))

    assert (second.status, second.body, second.not_modified) == (304, b"", True)
    assert second.validators == Validators('"v1"', None)
    assert [h.get("if-none-match") for h in headers_of(http_server, "/mali")] == [None, '"v1"']
    # The script shares the ETag, yet is requested unconditionally: this page has no copy of it.
    assert [h.get("if-none-match") for h in headers_of(http_server, "/app.js")] == [None]


def test_304_keeps_the_validators_it_does_not_repeat(
    runner: asyncio.Runner, browser: BrowserFetcher, http_server: LocalServer
) -> None:
    stamp = "Mon, 02 Nov 2026 10:00:00 GMT"
    http_server.route("/mali", PLAIN, last_modified=stamp)
    sent = Validators('"old"', stamp)
    fetched = runner.run(browser.fetch(http_server.url("/mali"), validators=sent, wait_for="p"))
    assert (fetched.status, fetched.validators) == (304, Validators('"old"', stamp))
    [request] = headers_of(http_server, "/mali")
    assert request["if-modified-since"] == stamp


def test_waiting_for_a_selector_that_never_appears_times_out(
    runner: asyncio.Runner, quick: BrowserFetcher, js_server: LocalServer
) -> None:
    runner.run(quick.fetch(js_server.url("/mali"), wait_for="h1"))  # the browser is running now
    started = time.monotonic()
    error = browser_error(runner, quick, js_server.url("/mali"), wait_for="#never")
    assert error.message == "timed out after 2s waiting for the selector '#never'"
    # Given up at the timeout (plus the time to open and close a page), not later.
    assert time.monotonic() - started < 5


def test_slow_server_times_out(
    runner: asyncio.Runner, quick: BrowserFetcher, http_server: LocalServer
) -> None:
    http_server.route("/slow", PLAIN, delay=3)
    error = browser_error(runner, quick, http_server.url("/slow"))
    assert error.message == "timed out after 2s"


def test_connection_refused(runner: asyncio.Runner, browser: BrowserFetcher) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = browser_error(runner, browser, f"http://127.0.0.1:{port}/advice")
    assert error.message == "connection refused (net::ERR_CONNECTION_REFUSED)"
    assert error.status is None


@pytest.mark.parametrize("url", ["ftp://example.org/advice", "file:///etc/passwd", "/relative"])
def test_only_http_and_https(runner: asyncio.Runner, browser: BrowserFetcher, url: str) -> None:
    error = browser_error(runner, browser, url)
    assert error.message == "not an absolute http or https URL"


def test_redirects_are_followed_within_the_limit(
    runner: asyncio.Runner, browser: BrowserFetcher, http_server: LocalServer
) -> None:
    http_server.route("/mali", PLAIN)
    for hop in range(7):
        target = f"/hop{hop + 1}" if hop < 6 else "/mali"
        http_server.route(f"/hop{hop}", status=301, headers={"Location": target})

    fetched = runner.run(browser.fetch(http_server.url("/hop2"), wait_for="p"))  # 5 redirects
    assert (fetched.url, fetched.final_url) == (http_server.url("/hop2"), http_server.url("/mali"))
    error = browser_error(runner, browser, http_server.url("/hop1"))  # 6 redirects
    assert error.message == "too many redirects (more than 5)"


def test_a_payload_that_is_not_html_is_returned_as_sent(
    runner: asyncio.Runner, browser: BrowserFetcher, http_server: LocalServer
) -> None:
    http_server.route("/feed.json", '{"level": 4}', content_type="application/json")
    fetched = runner.run(browser.fetch(http_server.url("/feed.json")))
    assert (fetched.body, fetched.content_type) == (b'{"level": 4}', "application/json")


def test_oversized_page_is_refused(
    runner: asyncio.Runner, quick: BrowserFetcher, http_server: LocalServer
) -> None:
    http_server.route("/big", f"<html><body><p>{'x' * 30_000}</p></body></html>")
    error = browser_error(runner, quick, http_server.url("/big"))
    assert error.message == "body larger than 20000 bytes"


def _processes() -> dict[int, tuple[str, str, int]]:
    """Every process: pid -> (name, state, parent pid)."""
    found: dict[int, tuple[str, str, int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat:
            state, parent = stat[stat.rindex(")") + 2 :].split()[:2]
            found[int(entry.name)] = (stat[stat.index("(") + 1 : stat.rindex(")")], state, int(parent))
    return found


def _chromium_processes() -> dict[int, int]:
    """Chromium processes descending from this one: pid -> parent pid."""
    table = _processes()

    def ours(pid: int) -> bool:
        while pid > 1:
            pid = table[pid][2] if pid in table else 0
            if pid == os.getpid():
                return True
        return False

    return {pid: parent for pid, (name, _, parent) in table.items() if "chrom" in name and ours(pid)}


def _browser_processes(processes: dict[int, int]) -> set[int]:
    """The browser processes proper (started by a driver), not their renderers and helpers."""
    return {pid for pid, parent in processes.items() if parent not in processes}


def _family(root: int, processes: dict[int, int]) -> set[int]:
    """``root`` and every process below it."""
    family = {root}
    while grown := {pid for pid, parent in processes.items() if parent in family} - family:
        family |= grown
    return family


def _running(pids: set[int]) -> set[int]:
    """The ones still running; a zombie has exited and only waits to be reaped."""
    table = _processes()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def test_one_browser_reused_and_closed(runner: asyncio.Runner, http_server: LocalServer) -> None:
    paths = ("/a", "/b")
    for path in paths:
        http_server.route(path, PLAIN)
    # The browsers of the other tests' fixtures are running too.
    others = _browser_processes(_chromium_processes())
    fetcher = BrowserFetcher(HttpSettings(timeout=10, per_host=3), executable=CHROMIUM)

    async def use() -> list[dict[int, int]]:
        seen = []
        for path in paths:
            await fetcher.fetch(http_server.url(path), wait_for="p")
            seen.append(_chromium_processes())
        await asyncio.gather(*(fetcher.fetch(http_server.url(path), wait_for="p") for path in paths))
        return [*seen, _chromium_processes()]

    seen = runner.run(use())
    # The same single browser process served sequential and concurrent fetches.
    [browser] = _browser_processes(seen[0]) - others
    assert all(_browser_processes(processes) - others == {browser} for processes in seen)

    runner.run(fetcher.aclose())
    started = set().union(*(_family(browser, processes) for processes in seen))
    deadline = time.monotonic() + 5
    while _running(started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _running(started) == set()
    # Nothing of it is left for this process to reap: the exited helpers Chromium orphans
    # belong to init (PID 1) now, which reaps them.
    assert started.isdisjoint(_chromium_processes())
    error = browser_error(runner, fetcher, http_server.url("/a"))
    assert error.message == "the browser fetcher is closed"


def test_missing_browser_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FetchError) as caught:
        find_browser(None, environ={})
    assert "apt-get install chromium" in caught.value.message
    assert "defaults.browser_path" in caught.value.message


def test_named_browser_wins_and_must_exist() -> None:
    assert find_browser(CHROMIUM, environ={"MONITOR_BROWSER": "/nonexistent"}) == CHROMIUM
    assert find_browser(None, environ={"MONITOR_BROWSER": str(CHROMIUM)}) == CHROMIUM
    with pytest.raises(FetchError, match=r"browser '/opt/none/chrome' not found or not executable"):
        find_browser("/opt/none/chrome", environ={})


def test_sandbox_is_only_disabled_for_root() -> None:
    assert "--no-sandbox" in launch_args(as_root=True)
    assert "--no-sandbox" not in launch_args(as_root=False)
    assert "--disable-quic" in launch_args(as_root=False)


def test_browser_source_through_the_pipeline(
    runner: asyncio.Runner, js_server: LocalServer, tmp_path: Path
) -> None:
    text = f"""
countries: [ML]
defaults: {{timeout: 10s, browser_path: "{CHROMIUM}"}}
sources:
  - id: fr-mali
    kind: html
    url: "{js_server.url("/mali")}"
    countries: [ML]
    fetcher: browser
    wait_for: "#advice p"
    options: {{select: "#advice"}}
"""
    config = loads(text, path=Path("t.yaml"), environ={})
    now = datetime.now(UTC)
    with Store.open(f"sqlite:///{tmp_path}/m.db") as store:
        store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), now)
        [report] = runner.run(check_sources(config, store))
        assert (report.outcome, report.http_status, report.error) == (Outcome.NEW, 200, None)
        [snapshot] = store.latest_snapshots("fr-mali").values()
    assert snapshot.key == "ML"
    assert snapshot.record.text == ADVICE


def test_a_browser_that_cannot_start(runner: asyncio.Runner, tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'error while loading shared libraries: libnss3.so' >&2\nexit 127\n")
    fake.chmod(0o755)

    async def go(executable: Path) -> None:
        async with BrowserFetcher(HttpSettings(), executable=str(executable)) as fetcher:
            await fetcher.fetch("http://127.0.0.1/advice")

    with pytest.raises(FetchError) as caught:
        runner.run(go(fake))
    said = "error while loading shared libraries: libnss3.so"
    assert caught.value.message == f"could not start the browser {fake}: {said} (exit code 127)"
    with pytest.raises(FetchError, match="not found or not executable"):
        runner.run(go(tmp_path / "absent"))
