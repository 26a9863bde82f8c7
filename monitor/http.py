"""The only place httpx is configured: timeouts, User-Agent, redirects, size cap, conditional GET.

One :class:`Fetcher` wraps one shared client for the whole process. Every failure comes out as a
:class:`~monitor.errors.FetchError` (a :class:`~monitor.errors.BlockedError` for refusals and
bot challenges) whose message is a human reason; messages never carry more than the URL.
One :class:`HostPacer` per process spaces the requests to each host and keeps its Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import socket
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Literal, Self

import httpcore
import httpx

from monitor import __version__
from monitor.contentcoding import BodyTooLargeError, BoundedDecoder, ContentDecodingError
from monitor.errors import BlockedError, FetchError
from monitor.lanes import HostLanes
from monitor.models import Fetched, Validators
from monitor.netguard import AddressPolicy, AddressRefusedError, GuardedBackend, IPNetwork

_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,application/json;q=0.9,*/*;q=0.8"
# Block pages are small and say what they are near the top; this much is enough to recognise them.
_SNIFF_BYTES = 64 * 1024

# (reason, byte strings that must all occur in the lower-cased start of the page)
_BLOCK_PAGES: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    ("Cloudflare challenge page", (b"<title>just a moment...</title>",)),
    ("Cloudflare challenge page", (b"cf-chl",)),
    ("Cloudflare challenge page", (b"cf_chl_",)),
    ("Cloudflare block page", (b"attention required! | cloudflare",)),
    ("Akamai block page", (b"<title>access denied</title>", b"reference #")),
    ("Akamai block page", (b"<title>access denied</title>", b"reference&#32;&#35;")),
    ("Incapsula block page", (b"_incapsula_resource",)),
    ("DataDome challenge page", (b"captcha-delivery",)),
    ("PerimeterX challenge page", (b"px-captcha",)),
)


@functools.cache
def _default_user_agent() -> str:
    return f"advisory-monitor/{__version__} (+https://github.com/advisory-monitor/advisory-monitor)"


@dataclass(frozen=True)
class HttpSettings:
    """How every fetch behaves.

    ``timeout`` (seconds) bounds each network step and also the whole fetch, body included
    (time spent queueing for a concurrency slot is not counted).
    ``max_body`` caps the decoded body in bytes. ``concurrency`` fetches run at once, at most
    ``per_host`` of them against one host:port, and requests to one host:port start at least
    ``host_spacing`` seconds apart (see :class:`HostPacer`). ``private_addresses="refuse"``
    refuses every connection to a private, loopback or otherwise non-public address (see
    :mod:`monitor.netguard`), except to ``exempt_networks``. Raises ValueError for values that
    cannot work.
    """

    timeout: float = 30.0
    user_agent: str = field(default_factory=_default_user_agent)
    max_body: int = 5_000_000
    concurrency: int = 16
    per_host: int = 2
    max_redirects: int = 5
    host_spacing: float = 1.0
    private_addresses: Literal["allow", "refuse"] = "allow"
    exempt_networks: tuple[IPNetwork, ...] = ()

    def __post_init__(self) -> None:
        if self.private_addresses not in ("allow", "refuse"):
            raise ValueError("private_addresses must be 'allow' or 'refuse'")
        if self.timeout <= 0 or self.max_body < 0 or self.max_redirects < 0:
            raise ValueError("timeout must be positive; max_body and max_redirects not negative")
        if not self.host_spacing >= 0:
            raise ValueError("host_spacing must not be negative")
        if self.concurrency < 1 or self.per_host < 1:
            raise ValueError("concurrency and per_host must be at least 1")


class RetryLaterError(FetchError):
    """HTTP 429 or 503: the publisher asked us to come back later.

    ``retry_after`` is the delay in seconds from the Retry-After header, None when absent or
    unreadable.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None,
        source_id: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, source_id=source_id, url=url, status=status)
        self.retry_after = retry_after


class HostPacer:
    """A minimum spacing between the starts of requests to one host:port, and the hosts'
    Retry-After. Shared by the HTTP and the browser fetcher of one process; one event loop.

    ``spacing`` seconds (0: none) separate the starts of two requests to one host. A host's
    Retry-After (:meth:`defer`) holds back every request to it until it has passed, unless that
    is more than ``max_wait`` seconds away: then :meth:`wait_turn` raises
    :class:`RetryLaterError` at once, so that the source is rescheduled instead of holding a
    slot. ``clock`` (monotonic seconds) and ``sleep`` are injectable for tests. Raises
    ValueError for a negative ``spacing`` or ``max_wait``.
    """

    def __init__(
        self,
        spacing: float,
        *,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not (spacing >= 0 and max_wait >= 0):
            raise ValueError("spacing and max_wait must not be negative")
        self._spacing = spacing
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}  # the earliest start of the host's next request
        self._deferred: dict[str, float] = {}  # no request to the host before this time

    async def wait_turn(self, host: str) -> None:
        """Take ``host``'s next slot and sleep until it comes.

        Concurrent callers get successive slots, ``spacing`` apart. A slot taken is used even if
        the caller is cancelled while it waits. Raises :class:`RetryLaterError` (``retry_after``:
        the seconds left) without waiting when the host's Retry-After ends more than
        ``max_wait`` seconds from now.
        """
        while True:
            now = self._clock()
            self._refuse_long_deferral(host, now)
            slot = max(now, self._next.get(host, now), self._deferred.get(host, now))
            self._next[host] = slot + self._spacing
            if slot <= now:
                return
            await self._sleep(slot - now)
            # A Retry-After that arrived while this caller slept applies to it too.
            if self._deferred.get(host, -math.inf) <= self._clock():
                return

    def defer(self, host: str, seconds: float) -> None:
        """No request to ``host`` before ``seconds`` from now; a deferral only ever grows longer."""
        until = self._clock() + seconds
        if until > self._deferred.get(host, -math.inf):
            self._deferred[host] = until

    def _refuse_long_deferral(self, host: str, now: float) -> None:
        left = self._deferred.get(host, now) - now
        if left > self._max_wait:
            raise RetryLaterError(
                f"{host} asked to be left alone for another {math.ceil(left)} s (Retry-After)",
                retry_after=left,
            )


def address_policy(settings: HttpSettings) -> AddressPolicy | None:
    """The addresses fetches may connect to; None when every address may be."""
    if settings.private_addresses == "allow":
        return None
    return AddressPolicy(exempt=settings.exempt_networks)


def pacer_for(settings: HttpSettings) -> HostPacer:
    """The process's pacer: ``settings.host_spacing`` apart; a Retry-After longer than
    ``settings.timeout`` is not waited for."""
    return HostPacer(settings.host_spacing, max_wait=settings.timeout)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds; every client of the process can share it.
    return httpx.create_ssl_context()


def build_client(
    settings: HttpSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The client every fetch shares. Only http and https URLs are requested, redirects included.

    ``transport`` replaces the network (tests, proxies). Without one, each host's connections
    are kept in one-connection lanes (:class:`~monitor.lanes.HostLanes`), unless the environment
    names a proxy (``HTTPS_PROXY`` and the like): then httpx's own pool and proxy handling are
    used. The caller closes the client.

    With ``settings.private_addresses == "refuse"``, the lanes connect only to addresses they
    have resolved and checked themselves (:class:`~monitor.netguard.GuardedBackend`), redirects
    included. Through a proxy, the proxy resolves names: each request (and redirect) is refused
    beforehand when its host is a forbidden address or resolves to one here; the proxy's own
    rules must deny what it might resolve differently. A ``transport`` given is used as it is.
    """
    policy = address_policy(settings)
    hooks: list[Callable[[httpx.Request], Awaitable[None]]] = [_require_http]
    if transport is None and not _environment_proxies():
        transport = HostLanes(settings.per_host, functools.partial(_one_connection, policy))
    elif transport is None and policy is not None:
        hooks.append(functools.partial(_refuse_forbidden_host, policy))
    return httpx.AsyncClient(
        headers={
            "User-Agent": settings.user_agent,
            "Accept": _ACCEPT,
            "Accept-Encoding": "gzip, deflate, br",
        },
        timeout=httpx.Timeout(settings.timeout),
        verify=_tls_context(),
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        limits=httpx.Limits(
            max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
        ),
        event_hooks={"request": hooks, "response": [_keep_redirect_body_encoded]},
        transport=transport,
    )


def _environment_proxies() -> bool:
    # What httpx itself reads (urllib's view of *_PROXY and the system settings); a transport
    # given to the client would make httpx ignore them.
    return any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies())


_ONE = httpx.Limits(max_connections=1, max_keepalive_connections=1)


def _one_connection(policy: AddressPolicy | None = None) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(verify=_tls_context(), limits=_ONE)
    if policy is not None:
        _guard(transport, policy)
    return transport


def _guard(transport: httpx.AsyncHTTPTransport, policy: AddressPolicy) -> None:
    """Replace the transport's connection pool by the same pool connecting through the guard.

    httpx has no option for httpcore's ``network_backend``; the pool it builds is rebuilt with
    the settings :func:`_one_connection` gives. Fails loudly, rather than leaving the pool
    unguarded, if httpx ever keeps its pool elsewhere."""
    if not isinstance(vars(transport).get("_pool"), httpcore.AsyncConnectionPool):
        raise RuntimeError("this httpx keeps its connection pool elsewhere; the address guard cannot be set")
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_tls_context(),
        max_connections=_ONE.max_connections,
        max_keepalive_connections=_ONE.max_keepalive_connections,
        keepalive_expiry=_ONE.keepalive_expiry,
        network_backend=GuardedBackend(policy),
    )


async def _refuse_forbidden_host(policy: AddressPolicy, request: httpx.Request) -> None:
    reason = await policy.check(
        request.url.host, request.url.port or _DEFAULT_PORTS.get(request.url.scheme, 80)
    )
    if reason is not None:
        raise httpx.ConnectError(reason, request=request) from AddressRefusedError(reason)


async def _require_http(request: httpx.Request) -> None:
    if request.url.scheme not in _SCHEMES:
        raise httpx.UnsupportedProtocol(f"unsupported URL scheme {request.url.scheme!r}", request=request)


async def _keep_redirect_body_encoded(response: httpx.Response) -> None:
    # httpx reads and decodes the body of each redirect it follows, without a size cap. That
    # body is thrown away, so it is read as sent: a compression bomb there is never expanded.
    if response.has_redirect_location:
        response.headers.pop("Content-Encoding", None)


def looks_blocked(status: int, body: bytes) -> str | None:
    """Why an answer is a refusal rather than content, or None.

    HTTP 403 is always a refusal; any other answer is one when the first 64 KB of its body are a
    recognisable bot-challenge or block page (Cloudflare, Akamai, Incapsula, DataDome, PerimeterX).
    """
    start = body[:_SNIFF_BYTES].lower()
    page = next((reason for reason, needles in _BLOCK_PAGES if all(n in start for n in needles)), None)
    if page and not 200 <= status < 300:
        return f"{page} (HTTP {status})"
    if page:
        return page
    return _status_line(status) if status == 403 else None


class Fetcher:
    """Fetches URLs through one shared client, within the limits of :class:`HttpSettings`.

    With a ``pacer``, each request waits for its host's turn and a 429/503 Retry-After holds
    back the host's later requests. Use it from a single event loop. :meth:`aclose` (or leaving
    ``async with``) closes the client.
    """

    def __init__(
        self, client: httpx.AsyncClient, settings: HttpSettings, pacer: HostPacer | None = None
    ) -> None:
        self._client = client
        self._settings = settings
        self._pacer = pacer
        self._all = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self, url: str, *, validators: Validators | None = None, source_id: str | None = None
    ) -> Fetched:
        """GET ``url``, conditionally when ``validators`` are given.

        Returns a :class:`Fetched` for 2xx and 304 (a 304 has an empty body and keeps the sent
        validators the answer does not repeat). ``elapsed`` counts from when the fetch got its
        concurrency slots; waiting for them or for the host's turn is not part of the timeout.
        Raises :class:`BlockedError` for 403 and bot-challenge pages, :class:`RetryLaterError`
        for 429 and 503 and for a host whose Retry-After outlasts the pacer's ``max_wait`` (then
        nothing is sent), and :class:`FetchError` for every other
        failure: timeout, connection, redirects, other HTTP errors, truncated, oversized or
        undecodable bodies. Errors carry ``source_id`` and ``url``.
        """
        try:
            return await self._fetch(url, validators)
        except FetchError as exc:
            # Only this level knows which source the failure concerns.
            exc.source_id, exc.url = source_id, url
            raise

    async def _fetch(self, url: str, validators: Validators | None) -> Fetched:
        host = host_key(url)
        # The host slot comes first so that a fetch queued behind a busy host (or waiting for its
        # turn) holds no global slot.
        async with self._host_semaphore(host):
            if self._pacer is not None:
                await self._pacer.wait_turn(host)
            async with self._all:
                try:
                    return await self._timed_exchange(url, validators)
                except RetryLaterError as exc:
                    if self._pacer is not None and exc.retry_after is not None:
                        self._pacer.defer(host, exc.retry_after)
                    raise

    async def _timed_exchange(self, url: str, validators: Validators | None) -> Fetched:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._settings.timeout):
                return await self._exchange(url, validators, started)
        except (TimeoutError, httpx.TimeoutException):
            raise FetchError(f"timed out after {self._settings.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise FetchError(self._transport_reason(exc)) from exc

    def _host_semaphore(self, host: str) -> asyncio.Semaphore:
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self._settings.per_host)
        return self._hosts[host]

    async def _exchange(self, url: str, validators: Validators | None, started: float) -> Fetched:
        async with self._client.stream("GET", url, headers=_conditional_headers(validators)) as response:
            body = await self._body(response)
        return Fetched(
            url=url,
            final_url=str(response.url),
            status=response.status_code,
            body=body,
            content_type=response.headers.get("Content-Type"),
            validators=_answer_validators(response, validators),
            elapsed=time.perf_counter() - started,
        )

    async def _body(self, response: httpx.Response) -> bytes:
        status = response.status_code
        if status == 304:
            # A 304 has no body, but reading its (empty) end is what hands the connection back to
            # the pool: a response closed unread closes its connection, and the next request to
            # the host pays a new one.
            await _read_body(response, self._settings.max_body)
            return b""
        if not response.is_success:
            raise status_error(response.status_code, response.headers, await _start_of_body(response))
        body = await _read_body(response, self._settings.max_body)
        reason = looks_blocked(status, body)
        if reason:
            raise BlockedError(reason, status=status)
        return body

    def _transport_reason(self, exc: httpx.HTTPError) -> str:
        if isinstance(exc, httpx.TooManyRedirects):
            return f"too many redirects (more than {self._settings.max_redirects})"
        if isinstance(exc, httpx.UnsupportedProtocol):
            return f"redirected to a URL that is not http or https ({exc})"
        if isinstance(exc, httpx.ConnectError):
            return _connect_reason(exc)
        if isinstance(exc, httpx.RemoteProtocolError):
            return f"incomplete or invalid HTTP response: {exc}"
        if isinstance(exc, httpx.ReadError | httpx.WriteError):
            # A reset mid-answer often comes with an empty message.
            return f"connection lost during the answer: {str(exc) or 'closed or reset by the server'}"
        return f"connection failed: {str(exc) or type(exc).__name__}"


@functools.lru_cache(maxsize=65536)
def host_key(url: str) -> str:
    """``host:port`` of ``url``; raises FetchError for a URL that is not absolute http(s)."""
    # Cached: every check asks for its URL's host, and httpx reads a URL slowly (~50 µs).
    try:
        parsed = httpx.URL(url)
        host = parsed.host  # decodes an IDNA name, which may be invalid (http://xn--/)
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise FetchError(f"invalid URL: {exc}") from None
    if parsed.scheme not in _SCHEMES or not host:
        raise FetchError("not an absolute http or https URL")
    return f"{host}:{parsed.port or _DEFAULT_PORTS[parsed.scheme]}"


def _conditional_headers(validators: Validators | None) -> dict[str, str]:
    # A validator that is not ASCII cannot be sent back as a header; the GET is then unconditional.
    headers: dict[str, str] = {}
    if validators and validators.etag and validators.etag.isascii():
        headers["If-None-Match"] = validators.etag
    if validators and validators.last_modified and validators.last_modified.isascii():
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _answer_validators(response: httpx.Response, sent: Validators | None) -> Validators:
    fresh = Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))
    if response.status_code != 304 or sent is None:
        return fresh
    return Validators(fresh.etag or sent.etag, fresh.last_modified or sent.last_modified)


async def _read_body(response: httpx.Response, limit: int) -> bytes:
    """The decoded body; FetchError when it exceeds ``limit`` bytes or cannot be decoded."""
    encoding = response.headers.get("Content-Encoding")
    decoder = BoundedDecoder(encoding, limit)
    try:
        if not encoding and _content_length(response) > limit:
            raise BodyTooLargeError
        async for chunk in response.aiter_raw():
            decoder.feed(chunk)
        return decoder.finish()
    except BodyTooLargeError:
        raise FetchError(f"body larger than {limit} bytes", status=response.status_code) from None
    except ContentDecodingError as exc:
        raise FetchError(
            f"could not decode the {encoding} body: {exc}", status=response.status_code
        ) from None


def _content_length(response: httpx.Response) -> int:
    try:
        return int(response.headers.get("Content-Length", "0"))
    except ValueError:
        return 0


async def _start_of_body(response: httpx.Response) -> bytes:
    """Up to _SNIFF_BYTES of an error page, to tell a block page from a plain error.

    A body that breaks off or exceeds the window yields what arrived: the status is the failure
    being reported, not the body.
    """
    decoder = BoundedDecoder(response.headers.get("Content-Encoding"), _SNIFF_BYTES)
    with contextlib.suppress(BodyTooLargeError, ContentDecodingError, httpx.TransportError):
        async for chunk in response.aiter_raw():
            decoder.feed(chunk)
    return decoder.value


def status_error(status: int, headers: httpx.Headers, start: bytes) -> FetchError:
    """The error for a non-2xx answer: blocked, retry later (with Retry-After), or plain."""
    blocked = looks_blocked(status, start)
    if blocked:
        return BlockedError(blocked, status=status)
    if status in (429, 503):
        delay = _retry_after(headers)
        return RetryLaterError(_status_line(status), retry_after=delay, status=status)
    return FetchError(_status_line(status), status=status)


def _status_line(status: int) -> str:
    return f"HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip()


_MAX_RETRY_AFTER = 86_400.0  # seconds; as monitor.schedule honours it


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait per Retry-After: delay-seconds, or an HTTP-date read against the Date
    header; at most a day (a longer wait is not honoured, and 400 digits would be infinite)."""
    value = headers.get("Retry-After", "").strip()
    if value.isascii() and value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    when = _http_date(value)
    if when is None:
        return None
    now = _http_date(headers.get("Date", "")) or datetime.now(UTC)
    return min(max(0.0, (when - now).total_seconds()), _MAX_RETRY_AFTER)


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: year 99999999999
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _connect_reason(exc: httpx.ConnectError) -> str:
    root: BaseException = exc
    while (cause := root.__cause__ or root.__context__) is not None:
        root = cause
    if isinstance(root, AddressRefusedError):
        return root.reason
    if isinstance(root, socket.gaierror):
        return f"could not resolve the host name ({root.strerror})"
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    return f"could not connect: {root}"
