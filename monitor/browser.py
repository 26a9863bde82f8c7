"""The browser fetcher (``fetcher: browser``): pages loaded by a headless system Chromium.

Some publishers refuse clients that are not browsers, or build their advice with JavaScript.
:class:`BrowserFetcher` drives the Chromium installed on the machine (never a downloaded one)
through Playwright and returns the rendered document. It keeps the contract of
:class:`monitor.http.Fetcher`: a :class:`~monitor.models.Fetched` for 2xx and 304, a
:class:`~monitor.errors.BlockedError` for refusals and bot challenges, a
:class:`~monitor.errors.FetchError` with a human reason for every other failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    WebSocketRoute,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from monitor.errors import BlockedError, FetchError
from monitor.http import (
    HostPacer,
    HttpSettings,
    RetryLaterError,
    address_policy,
    host_key,
    looks_blocked,
    status_error,
)
from monitor.models import Fetched, Validators
from monitor.netguard import AddressPolicy, refusal

ENV_EXECUTABLE = "MONITOR_BROWSER"
# Looked up on PATH in this order when neither the config nor the environment names one.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")

# Without these, Chromium contacts Google hosts at start (background requests, component updates,
# sync, QUIC probes); and a container's /dev/shm is often 64 MB, so shared memory goes to /tmp.
_QUIET_ARGS = (
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
# A page costs a renderer process and tens of MB; more than this at once only thrashes.
MAX_PAGES = 4
# Without ``wait_for``, how long to wait for the network to go quiet after the document loaded.
# Pages that poll never go quiet; their content is taken as it is when this runs out.
NETWORK_IDLE_WAIT = 5.0
# Starting Chromium is not part of any fetch's deadline, but it is bounded too.
LAUNCH_TIMEOUT = 60.0
# Playwright enforces each step's deadline; this backstop only catches a browser that hangs.
_BACKSTOP_GRACE = 2.0
# Block pages say what they are near the top; a refused answer is read this far at most.
_SNIFF_BYTES = 64 * 1024
_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Chromium hands these to a built-in viewer; the response body it reports is the viewer's page.
_VIEWER_TYPES = frozenset({"application/pdf"})
_NET_ERROR = re.compile(r"net::(ERR_[A-Z0-9_]+)")
_BROWSER_STDERR = re.compile(r"^\[pid=\d+\]\[err\] (.*)$", re.MULTILINE)
_EXIT_CODE = re.compile(r"<process did exit: exitCode=(\d+)")
_NET_REASONS = {
    "ERR_CONNECTION_REFUSED": "connection refused",
    "ERR_NAME_NOT_RESOLVED": "could not resolve the host name",
    "ERR_NAME_RESOLUTION_FAILED": "could not resolve the host name",
    "ERR_ADDRESS_UNREACHABLE": "could not connect: address unreachable",
    "ERR_INTERNET_DISCONNECTED": "could not connect: no network",
    "ERR_CONNECTION_TIMED_OUT": "timed out while connecting",
    "ERR_CONNECTION_RESET": "the server reset the connection",
    "ERR_CONNECTION_CLOSED": "the server closed the connection",
    "ERR_EMPTY_RESPONSE": "the server closed the connection without answering",
    "ERR_INVALID_RESPONSE": "incomplete or invalid HTTP response",
    "ERR_INVALID_HTTP_RESPONSE": "incomplete or invalid HTTP response",
    "ERR_TOO_MANY_REDIRECTS": "too many redirects",
    "ERR_UNSAFE_REDIRECT": "redirected to a URL that is not http or https",
    "ERR_UNSAFE_PORT": "the browser refuses to connect to this port",
    "ERR_ABORTED": "the browser abandoned the page (a download, an empty answer such as HTTP 204, "
    "or a navigation the page cancelled)",
}


def find_browser(executable: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The Chromium to run: ``executable``, else ``$MONITOR_BROWSER``, else the first of
    :data:`CANDIDATES` on PATH. Raises FetchError when the chosen one is not an executable file.
    """
    environ = os.environ if environ is None else environ
    named = executable or environ.get(ENV_EXECUTABLE)
    if named:
        found = shutil.which(named)
        if found is None:
            raise FetchError(f"browser {named!r} not found or not executable")
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise FetchError(
        "no Chromium found for fetcher: browser; install it (Debian: apt-get install chromium) "
        f"or name it in defaults.browser_path or ${ENV_EXECUTABLE}"
    )


def launch_args(*, as_root: bool) -> list[str]:
    """Chromium's command-line switches; ``as_root`` adds --no-sandbox, which it refuses to run without."""
    return [*(["--no-sandbox"] if as_root else []), *_QUIET_ARGS]


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass
class _Deadline:
    """The time left of one fetch's ``timeout``, in the units Playwright wants."""

    seconds: float
    end: float = field(init=False)

    def __post_init__(self) -> None:
        self.end = time.monotonic() + self.seconds

    def ms(self, cap: float | None = None) -> float:
        """Milliseconds left (at most ``cap`` seconds); never 0, which Playwright reads as "no limit"."""
        left = self.end - time.monotonic()
        if cap is not None:
            left = min(left, cap)
        return max(1.0, left * 1000)


class BrowserFetcher:
    """Fetches pages with one headless Chromium, started on the first fetch and reused.

    Each fetch gets its own browser context (cookies, storage and cache start empty) and page,
    closed afterwards. At most ``min(settings.concurrency, MAX_PAGES)`` pages are open at once,
    at most ``settings.per_host`` per host:port. ``executable`` is the Chromium to run (see
    :func:`find_browser`). With a ``pacer`` (the HTTP fetcher's), each page load waits for its
    host's turn and a 429/503 Retry-After holds back the host's later requests; the resources a
    page loads itself are not paced. Use it from a single event loop; :meth:`aclose` (or leaving
    ``async with``) stops the browser and the Playwright driver.

    With ``settings.private_addresses == "refuse"``, a page whose host is or resolves to a
    forbidden address is refused before the browser is asked; every request and WebSocket the
    page makes (redirects included) is checked the same way and aborted when forbidden, and a
    refused main document fails the fetch. Chromium resolves names itself, after the check: a
    name whose answer changes between the two (DNS rebinding) is not caught here, and
    connections Playwright cannot intercept (WebRTC) are not checked.
    """

    def __init__(
        self, settings: HttpSettings, *, executable: str | None = None, pacer: HostPacer | None = None
    ) -> None:
        self._settings = settings
        self._executable = executable
        self._pacer = pacer
        self._policy = address_policy(settings)
        self._pages = asyncio.Semaphore(min(settings.concurrency, MAX_PAGES))
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._lock = asyncio.Lock()
        self._driver: Playwright | None = None
        self._browser: Browser | None = None
        self._user_agent = ""
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the browser and stop the driver; later fetches raise FetchError. Idempotent."""
        async with self._lock:
            self._closed = True
            browser, self._browser = self._browser, None
            driver, self._driver = self._driver, None
            if browser is not None:
                with contextlib.suppress(PlaywrightError):
                    await browser.close()
            if driver is not None:
                await driver.stop()

    async def fetch(
        self,
        url: str,
        *,
        validators: Validators | None = None,
        source_id: str | None = None,
        wait_for: str | None = None,
    ) -> Fetched:
        """Load ``url`` in a fresh page and return the rendered document.

        The document is ready once ``wait_for`` (a CSS selector) is in it, or, without one, when
        the network has been quiet for 500 ms (at most :data:`NETWORK_IDLE_WAIT` seconds). The
        body is the serialised DOM in UTF-8; a main document that is not HTML (JSON, XML, text)
        is returned as sent instead. ``validators`` make the request for the main document
        conditional; a 304 gives an empty body and keeps the sent validators the answer does
        not repeat. ``settings.timeout`` bounds the fetch from the moment it holds its slots
        and its host's turn (starting the browser is not counted). Raises :class:`BlockedError`
        for 403 and for a bot-challenge page still showing when the wait ends,
        :class:`RetryLaterError` for 429 and 503 and for a host whose Retry-After outlasts the
        pacer's ``max_wait`` (then nothing is loaded), :class:`FetchError` for everything else
        (no browser, timeout, network, other HTTP errors, oversized pages). Errors carry
        ``source_id`` and ``url``.
        """
        try:
            return await self._fetch(url, validators, wait_for)
        except FetchError as exc:
            exc.source_id, exc.url = source_id, url
            raise

    async def _fetch(self, url: str, validators: Validators | None, wait_for: str | None) -> Fetched:
        host = host_key(url)
        # The host slot comes first so that a fetch queued behind a busy host (or waiting for its
        # turn) holds no page slot; the turn comes before the browser, which a host that asked
        # to be left alone then does not start.
        async with self._host_semaphore(host):
            await self._refuse_forbidden(url)
            if self._pacer is not None:
                await self._pacer.wait_turn(host)
            browser = await self._running_browser()
            async with self._pages:
                try:
                    return await self._visit(browser, url, validators, wait_for)
                except RetryLaterError as exc:
                    if self._pacer is not None and exc.retry_after is not None:
                        self._pacer.defer(host, exc.retry_after)
                    raise

    async def _visit(
        self, browser: Browser, url: str, validators: Validators | None, wait_for: str | None
    ) -> Fetched:
        timeout = self._settings.timeout
        try:
            async with asyncio.timeout(timeout + _BACKSTOP_GRACE):
                context = await browser.new_context(
                    user_agent=self._user_agent, service_workers="block", accept_downloads=False
                )
                try:
                    visit = _Visit(context, self._settings, url, validators, _Deadline(timeout))
                    if self._policy is not None:
                        await visit.guard(self._policy)
                    return await visit.run(wait_for)
                finally:
                    with contextlib.suppress(PlaywrightError):
                        await context.close()
        except TimeoutError:
            raise FetchError(f"timed out after {timeout:g}s") from None
        except PlaywrightError as exc:
            raise FetchError(f"the browser failed: {_first_line(exc)}") from None

    def _host_semaphore(self, host: str) -> asyncio.Semaphore:
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self._settings.per_host)
        return self._hosts[host]

    async def _refuse_forbidden(self, url: str) -> None:
        if self._policy is not None:
            reason = await _refusal(self._policy, url)
            if reason is not None:
                raise FetchError(reason)

    async def _running_browser(self) -> Browser:
        """The browser, started now if it is not running (never started, or crashed)."""
        async with self._lock:
            if self._closed:
                raise FetchError("the browser fetcher is closed")
            if self._browser is None or not self._browser.is_connected():
                self._browser = await self._launch(find_browser(self._executable))
            return self._browser

    async def _launch(self, executable: str) -> Browser:
        try:
            if self._driver is None:
                with _children_in_own_session():
                    self._driver = await async_playwright().start()
            browser = await self._driver.chromium.launch(
                executable_path=executable,
                headless=True,
                args=launch_args(as_root=_running_as_root()),
                chromium_sandbox=not _running_as_root(),
                timeout=LAUNCH_TIMEOUT * 1000,
            )
        except PlaywrightError as exc:
            raise FetchError(f"could not start the browser {executable}: {_launch_reason(exc)}") from None
        try:
            self._user_agent = await _user_agent(browser, self._settings.user_agent)
        except PlaywrightError as exc:
            with contextlib.suppress(PlaywrightError):
                await browser.close()
            raise FetchError(f"the browser {executable} failed at start: {_first_line(exc)}") from None
        return browser


@contextlib.contextmanager
def _children_in_own_session() -> Iterator[None]:
    """Spawn Playwright's driver (and so the browser it starts) in a session of its own.

    A terminal's Ctrl-C goes to the whole foreground process group; the driver would die of it
    before the monitor has closed it in order. Playwright offers no option for this, so the
    asyncio function its transport calls is wrapped while the driver starts."""
    original = asyncio.create_subprocess_exec

    async def spawn(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        return await original(*args, start_new_session=True, **kwargs)

    asyncio.create_subprocess_exec = spawn
    try:
        yield
    finally:
        asyncio.create_subprocess_exec = original


async def _user_agent(browser: Browser, token: str) -> str:
    """Chromium's own User-Agent with ``token`` (the HTTP fetcher's User-Agent) appended.

    Publishers that refuse other clients let a browser's User-Agent through; the appended
    token still says who is asking. "HeadlessChrome" is reported as "Chrome": some block pages
    key on that word alone, and the browser is the same one.
    """
    page = await browser.new_page()
    try:
        own = str(await page.evaluate("navigator.userAgent"))
    finally:
        await page.close()
    return f"{own.replace('HeadlessChrome/', 'Chrome/')} {token}"


class _Visit:
    """One fetch: load the page in ``context``, wait until it is ready, read it."""

    def __init__(
        self,
        context: BrowserContext,
        settings: HttpSettings,
        url: str,
        validators: Validators | None,
        deadline: _Deadline,
    ) -> None:
        self._context = context
        self._settings = settings
        self._url = url
        self._sent = validators
        self._deadline = deadline
        self._started = time.perf_counter()
        self._refused: str | None = None  # why the main document was refused
        self._policy: AddressPolicy | None = None
        self._answers: list[Response] = []
        self._headers = _conditional_headers(validators)  # for the first request, then {}

    async def guard(self, policy: AddressPolicy) -> None:
        """Abort every request and WebSocket of the context to a forbidden address, and refuse
        the page when any answer came from one (see :meth:`_refuse_forbidden_answers`)."""
        self._policy = policy
        await self._context.route("**/*", partial(self._guard_request, policy))
        await self._context.route_web_socket(re.compile(r".*"), partial(_guard_socket, policy))
        self._context.on("response", self._keep_answer)

    async def _continue(self, route: Route, request: Request) -> None:
        # The guard adds the main document's validators itself: a second route (the page's,
        # as without the guard) would race with it.
        headers, self._headers = self._headers, {}
        await route.continue_(headers={**request.headers, **headers} if headers else None)

    def _keep_answer(self, answer: Response) -> None:
        self._answers.append(answer)

    async def _refuse_forbidden_answers(self) -> None:
        """Raise FetchError when an answer the page received came from a forbidden address.

        Chromium follows HTTP redirects without asking the routes, and resolves names itself
        after the routes checked them; the address each answer really came from is checked
        here, before anything of the page is used."""
        if self._policy is None:
            return
        for answer in self._answers:
            try:
                server = await answer.server_addr()
            except PlaywrightError:
                continue
            if not server:
                continue
            address = ipaddress.ip_address(server["ipAddress"].strip("[]").partition("%")[0])
            kind = self._policy.reason(address)
            if kind is not None:
                raise FetchError(refusal(urlsplit(answer.url).hostname or str(address), address, kind))

    async def _guard_request(self, policy: AddressPolicy, route: Route, request: Request) -> None:
        reason = await _refusal(policy, request.url)
        with contextlib.suppress(PlaywrightError):
            if reason is None:
                await self._continue(route, request)
                return
            if request.is_navigation_request() and request.frame.parent_frame is None:
                self._refused = reason
            await route.abort("blockedbyclient")

    async def run(self, wait_for: str | None) -> Fetched:
        try:
            fetched = await self._load(wait_for)
        except FetchError:
            await self._refuse_forbidden_answers()  # the better reason, when there is one
            raise
        await self._refuse_forbidden_answers()
        return fetched

    async def _load(self, wait_for: str | None) -> Fetched:
        page = await self._context.new_page()
        headers = _conditional_headers(self._sent)
        probe = await _StatusProbe.attach(self._context, page) if headers else None
        if headers and self._policy is None:
            # Only the first request, the main document, is conditional: the other resources
            # have their own validators, and this fresh context holds no copy of any of them.
            await page.route("**/*", partial(_add_headers, headers), times=1)
        response = await self._navigate(page, probe)
        if isinstance(response, Fetched):
            return response
        status, answer = response.status, await response.all_headers()
        self._check_limits(response, status, answer)
        if status == 304:
            return self._fetched(response.url, 304, b"", None, self._kept(answer))
        if not 200 <= status < 300:
            raise status_error(status, httpx.Headers(dict(answer)), await _start_of_body(response))
        media_type = _media_type(answer)
        if media_type in _VIEWER_TYPES:
            raise FetchError(f"the browser shows {media_type} in a viewer, not as sent; use fetcher: http")
        if media_type and media_type not in _HTML_TYPES:
            return await self._as_sent(response, status, answer)
        return await self._rendered(page, status, answer, wait_for)

    async def _navigate(self, page: Page, probe: _StatusProbe | None) -> Response | Fetched:
        """The main document's response, or the result already when it was a 304."""
        try:
            response = await page.goto(self._url, wait_until="domcontentloaded", timeout=self._deadline.ms())
        except PlaywrightTimeoutError:
            raise FetchError(f"timed out after {self._settings.timeout:g}s") from None
        except PlaywrightError as exc:
            if self._refused is not None:
                raise FetchError(self._refused) from None
            # Chromium abandons a navigation answered 304; only the probe saw the answer.
            if probe is not None and await probe.final_status(self._deadline.ms(cap=1.0) / 1000) == 304:
                return self._fetched(probe.url or self._url, 304, b"", None, self._kept(probe.headers))
            raise FetchError(_navigation_reason(exc)) from None
        if response is None:
            raise FetchError("the browser reported no response for the page")
        return response

    def _check_limits(self, response: Response, status: int, answer: Mapping[str, str]) -> None:
        if _redirect_count(response.request) > self._settings.max_redirects:
            raise FetchError(f"too many redirects (more than {self._settings.max_redirects})")
        if _content_length(answer) > self._settings.max_body:
            raise FetchError(f"body larger than {self._settings.max_body} bytes", status=status)

    async def _rendered(
        self, page: Page, status: int, answer: Mapping[str, str], wait_for: str | None
    ) -> Fetched:
        await self._settle(page, status, wait_for)
        body = self._capped((await page.content()).encode("utf-8"), status)
        _refuse_block_page(status, body)
        return self._fetched(page.url, status, body, "text/html; charset=utf-8", _validators(answer))

    async def _as_sent(self, response: Response, status: int, answer: Mapping[str, str]) -> Fetched:
        # The browser wraps JSON or text in a page of its own; the parsers want the payload.
        body = self._capped(await response.body(), status)
        _refuse_block_page(status, body)
        return self._fetched(response.url, status, body, answer.get("content-type"), _validators(answer))

    async def _settle(self, page: Page, status: int, wait_for: str | None) -> None:
        """Wait until the page is ready to be read; see :meth:`BrowserFetcher.fetch`."""
        if wait_for is None:
            # A page whose network never goes quiet is read as it is when the wait runs out.
            with contextlib.suppress(PlaywrightTimeoutError):
                await page.wait_for_load_state("networkidle", timeout=self._deadline.ms(NETWORK_IDLE_WAIT))
            return
        try:
            await page.wait_for_selector(wait_for, state="attached", timeout=self._deadline.ms())
        except PlaywrightTimeoutError:
            # A challenge page that did not clear itself in time is a refusal, not a slow page.
            _refuse_block_page(status, await _current_content(page))
            raise FetchError(
                f"timed out after {self._settings.timeout:g}s waiting for the selector {wait_for!r}"
            ) from None
        except PlaywrightError as exc:
            raise FetchError(f"cannot wait for the selector {wait_for!r}: {_first_line(exc)}") from None

    def _capped(self, body: bytes, status: int) -> bytes:
        if len(body) > self._settings.max_body:
            raise FetchError(f"body larger than {self._settings.max_body} bytes", status=status)
        return body

    def _kept(self, answer: Mapping[str, str]) -> Validators:
        """Validators after a 304: the answer's, else the ones sent (a 304 need not repeat them)."""
        sent, fresh = self._sent or Validators(), _validators(answer)
        return Validators(fresh.etag or sent.etag, fresh.last_modified or sent.last_modified)

    def _fetched(
        self, final_url: str, status: int, body: bytes, content_type: str | None, validators: Validators
    ) -> Fetched:
        return Fetched(
            url=self._url,
            final_url=final_url,
            status=status,
            body=body,
            content_type=content_type,
            validators=validators,
            elapsed=time.perf_counter() - self._started,
        )


class _StatusProbe:
    """Status and headers of the main document's answer, read from the DevTools protocol.

    Chromium abandons a navigation answered 304 (it has no cached copy to show), so Playwright
    only reports ``net::ERR_ABORTED``; the DevTools network events still carry the status.
    """

    def __init__(self) -> None:
        self._document: str | None = None
        self._final = asyncio.Event()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.url: str | None = None

    @classmethod
    async def attach(cls, context: BrowserContext, page: Page) -> _StatusProbe:
        probe = cls()
        session = await context.new_cdp_session(page)
        session.on("Network.requestWillBeSent", probe._on_request)
        session.on("Network.responseReceivedExtraInfo", probe._on_response)
        await session.send("Network.enable")
        return probe

    def _on_request(self, params: dict[str, Any]) -> None:
        # The first document a fresh page requests is the main one; its redirects keep its id.
        if self._document is None and params.get("type") == "Document":
            self._document = params.get("requestId")
        if self._document is not None and params.get("requestId") == self._document:
            self.url = params.get("request", {}).get("url")

    def _on_response(self, params: dict[str, Any]) -> None:
        if self._document is None or params.get("requestId") != self._document:
            return
        self.status = int(params.get("statusCode", 0))
        self.headers = {str(k).lower(): str(v) for k, v in dict(params.get("headers", {})).items()}
        if self.status == 304 or not 300 <= self.status < 400:
            self._final.set()

    async def final_status(self, seconds: float) -> int | None:
        """The status that ended the redirects, waiting up to ``seconds`` for it to be reported."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._final.wait()
        return self.status if self._final.is_set() else None


async def _add_headers(headers: Mapping[str, str], route: Route, request: Request) -> None:
    with contextlib.suppress(PlaywrightError):
        await route.continue_(headers={**request.headers, **headers})


async def _refusal(policy: AddressPolicy, url: str) -> str | None:
    """Why ``url`` may not be requested, or None (also for what is not http(s) or ws(s))."""
    parts = urlsplit(url)
    port = _PORTS.get(parts.scheme)
    if port is None or not parts.hostname:
        return None
    try:
        port = parts.port or port
    except ValueError:
        return None
    return await policy.check(parts.hostname, port)


async def _guard_socket(policy: AddressPolicy, socket: WebSocketRoute) -> None:
    if await _refusal(policy, socket.url) is None:
        socket.connect_to_server()
    else:
        await socket.close(code=1008, reason="refused")


def _conditional_headers(validators: Validators | None) -> dict[str, str]:
    # A validator that is not ASCII cannot be sent back as a header; the GET is then unconditional.
    headers: dict[str, str] = {}
    if validators and validators.etag and validators.etag.isascii():
        headers["If-None-Match"] = validators.etag
    if validators and validators.last_modified and validators.last_modified.isascii():
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _redirect_count(request: Request) -> int:
    count, previous = 0, request.redirected_from
    while previous is not None:
        count, previous = count + 1, previous.redirected_from
    return count


def _validators(headers: Mapping[str, str]) -> Validators:
    return Validators(headers.get("etag"), headers.get("last-modified"))


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _content_length(headers: Mapping[str, str]) -> int:
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


async def _start_of_body(response: Response) -> bytes:
    """Up to _SNIFF_BYTES of an error page; empty when the browser kept none."""
    try:
        return (await response.body())[:_SNIFF_BYTES]
    except PlaywrightError:
        return b""


async def _current_content(page: Page) -> bytes:
    """The document as it is now; empty while the page is between two documents, or when its
    scripts keep it too busy to answer within a second."""
    try:
        async with asyncio.timeout(1.0):
            return (await page.content()).encode("utf-8")
    except (PlaywrightError, TimeoutError):
        return b""


def _refuse_block_page(status: int, body: bytes) -> None:
    reason = looks_blocked(status, body)
    if reason:
        raise BlockedError(reason, status=status)


def _navigation_reason(exc: PlaywrightError) -> str:
    match = _NET_ERROR.search(exc.message)
    if match is None and "Download is starting" in exc.message:
        return "the server sent a file to download, not a page"
    if match is None:
        return f"the browser could not load the page: {_first_line(exc)}"
    code = match.group(1)
    if code.startswith("ERR_CERT_"):
        reason = "TLS certificate not accepted"
    elif code.startswith("ERR_SSL_"):
        reason = "TLS handshake failed"
    else:
        reason = _NET_REASONS.get(code, "the browser could not load the page")
    return f"{reason} (net::{code})"


def _launch_reason(exc: PlaywrightError) -> str:
    """What the browser said on stderr before it died (the last line), and its exit code."""
    logs = exc.message.split("Call log:", 1)[0]
    said = [line.strip() for line in _BROWSER_STDERR.findall(logs) if line.strip()]
    code = _EXIT_CODE.search(exc.message)
    reason = said[-1] if said else _first_line(exc)
    return f"{reason} (exit code {code.group(1)})" if code else reason


def _first_line(exc: PlaywrightError) -> str:
    """Playwright's message without its call log, and without the "Page.goto: " style prefix."""
    line = (exc.message or type(exc).__name__).strip().splitlines()[0]
    return re.sub(r"^[A-Za-z]+\.[A-Za-z_]+: ", "", line)
