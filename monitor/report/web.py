"""The read-only web server behind ``monitor serve``: the live report and its Atom feeds.

::

    GET|HEAD /                  the HTML report; ?country=CC (repeatable), ?since=, ?until= narrow it
    GET|HEAD /feeds/all.atom    the Atom feed of every country's changes
    GET|HEAD /feeds/CC.atom     the Atom feed of one country (two letters, any case)
    GET|HEAD /healthz           200 "ok", never behind the token
    anything else               404; a known path with another method: 405

With a token, every other path asks for it, as ``Authorization: Bearer TOKEN`` or as a
``token`` query parameter (feed readers often cannot set headers); without it: 401. Answers
carry a weak ``ETag`` made from the caller's data version and what was asked, so a reader
polling a feed gets 304 without the history being read. The token is never logged: request
lines are logged without their query string.

Served by the standard library's WSGI server, one thread per request. The host is an IPv4
address, a host name (served on its IPv4 address) or an IPv6 address (``::1``, brackets
optional).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.util import application_uri

from monitor.errors import MonitorError
from monitor.report.atom import render_feed
from monitor.report.history import History, Window, window_of
from monitor.wsgiserve import base_url, bind

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.1  # seconds; how soon a set ``stop`` takes effect
MAX_FIELDS = 50  # query parameters a request may carry
HTML_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_TEXT = "text/plain; charset=utf-8"
_HTML = "text/html; charset=utf-8"
_ATOM = "application/atom+xml; charset=utf-8"
_REPORT_PARAMETERS = ("country", "since", "until")
_FEED = re.compile(r"/feeds/(all|[A-Za-z]{2})\.atom")
_LOOPBACK_NAMES = ("localhost", "localhost.")
_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s'\"]*", re.IGNORECASE)


@dataclass(frozen=True)
class _Route:
    """What a path asks for; ``country`` only for a country's feed."""

    kind: Literal["report", "feed", "health"]
    country: str | None = None


@dataclass(frozen=True)
class _Answer:
    status: HTTPStatus
    body: bytes = b""
    content_type: str | None = _TEXT
    headers: tuple[tuple[str, str], ...] = ()


def make_app(
    *,
    load: Callable[[Window], History],
    version: Callable[[], str],
    render_html: Callable[[History], str],
    token: str | None = None,
) -> WSGIApplication:
    """The WSGI application serving the report and the feeds.

    ``load`` reads the history of a window; ``version`` is a cheap text that changes whenever
    the data does (it makes the ETag); ``render_html`` turns a history into the report page.
    With ``token`` set, every path but ``/healthz`` requires it. An exception raised by any of
    the callables is logged with its traceback and answered with a generic 500.
    """
    return _App(load, version, render_html, token)


def serve(
    app: WSGIApplication,
    host: str,
    port: int,
    *,
    ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve ``app`` on ``host``:``port`` (0: any free port) until ``stop`` is set, or until
    interrupted (KeyboardInterrupt propagates once the server is closed).

    ``ready`` is called with the server's URL (``http://HOST:PORT/``, the port actually bound)
    once it accepts connections. Raises :class:`MonitorError` with a one-line reason when the
    address cannot be bound.
    """
    server = _bind(app, host, port)
    thread = threading.Thread(
        target=server.serve_forever, args=(POLL_INTERVAL,), name="report-server", daemon=True
    )
    thread.start()
    try:
        url = base_url(server) + "/"
        log.info("serving the report on %s", url)
        if ready is not None:
            ready(url)
        (stop or threading.Event()).wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def needs_token(host: str) -> bool:
    """Whether a server on ``host`` is reachable from other machines, so readers must present a
    token: True unless ``host`` is a loopback address (127.0.0.0/8, ``::1``) or ``localhost``."""
    bare = host.strip().removeprefix("[").removesuffix("]")
    if bare.lower() in _LOOPBACK_NAMES:
        return False
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return True  # a host name may resolve to any address
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return not (mapped or address).is_loopback


class _App:
    """Routes a request, checks the token and the ETag, then reads and renders."""

    def __init__(
        self,
        load: Callable[[Window], History],
        version: Callable[[], str],
        render_html: Callable[[History], str],
        token: str | None,
    ) -> None:
        self._load = load
        self._version = version
        self._render_html = render_html
        self._token = token.encode() if token is not None else None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        answer = self._answer(environ)
        headers = [
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]
        if answer.content_type is not None:
            headers += [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body)))]
        if answer.content_type == _HTML:
            headers.append(("Content-Security-Policy", HTML_POLICY))
        start_response(f"{answer.status.value} {answer.status.phrase}", [*headers, *answer.headers])
        # wsgiref keeps a Content-Length the application set when no body follows, as HEAD needs.
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [answer.body]

    def _answer(self, environ: WSGIEnvironment) -> _Answer:
        route = _route(environ.get("PATH_INFO") or "/")
        if route is None:
            return _text(HTTPStatus.NOT_FOUND, "not found")
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return _text(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD", ("Allow", "GET, HEAD"))
        if route.kind == "health":
            return _text(HTTPStatus.OK, "ok")
        try:
            query = parse_qs(
                environ.get("QUERY_STRING", ""), keep_blank_values=True, max_num_fields=MAX_FIELDS
            )
        except ValueError:
            return _text(HTTPStatus.BAD_REQUEST, f"more than {MAX_FIELDS} query parameters")
        if not self._authorised(environ, query.get("token", [])):
            return _text(HTTPStatus.UNAUTHORIZED, "a token is required", ("WWW-Authenticate", "Bearer"))
        try:
            window = _window(route, query)
        except ValueError as exc:
            return _text(HTTPStatus.BAD_REQUEST, str(exc))
        return self._content(environ, route, window)

    def _authorised(self, environ: WSGIEnvironment, from_query: list[str]) -> bool:
        if self._token is None:
            return True
        scheme, _, credentials = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
        # WSGI hands header values over as latin-1 text: encoding them back gives the bytes sent.
        offered = [credentials.strip().encode("latin-1", "replace")] if scheme.lower() == "bearer" else []
        offered += [value.encode() for value in from_query]
        expected = self._token
        return any(hmac.compare_digest(candidate, expected) for candidate in offered)

    def _content(self, environ: WSGIEnvironment, route: _Route, window: Window) -> _Answer:
        """The page or feed, or 304 when the reader's copy is current; 500 when reading fails."""
        try:
            tag = _etag(self._version(), application_uri(environ), route, window)
            if _matches(environ.get("HTTP_IF_NONE_MATCH", ""), tag):
                return _Answer(HTTPStatus.NOT_MODIFIED, content_type=None, headers=(("ETag", tag),))
            history = self._load(window)
            if route.kind == "report":
                body, content_type = self._render_html(history).encode(), _HTML
            else:
                body, content_type = _feed(environ, history, route.country), _ATOM
        except Exception:
            log.exception("cannot answer %s", environ.get("PATH_INFO"))
            return _text(
                HTTPStatus.INTERNAL_SERVER_ERROR, "the report cannot be read now; see the server's log"
            )
        return _Answer(HTTPStatus.OK, body, content_type, (("ETag", tag),))


def _route(path: str) -> _Route | None:
    if path == "/":
        return _Route("report")
    if path == "/healthz":
        return _Route("health")
    feed = _FEED.fullmatch(path)
    if feed is None:
        return None
    return _Route("feed", None if feed[1] == "all" else feed[1].upper())


def _window(route: _Route, query: dict[str, list[str]]) -> Window:
    """What to read: a feed's country, or the report's parameters (``ValueError`` saying what is
    wrong with them). A feed takes no parameters; any it is given are ignored."""
    if route.kind == "feed":
        return Window(countries=(route.country,) if route.country else ())
    for name, values in query.items():
        if name not in (*_REPORT_PARAMETERS, "token"):
            raise ValueError(f"unknown parameter {name!r}; allowed: {', '.join(_REPORT_PARAMETERS)}")
        if name in ("since", "until") and len(values) > 1:
            raise ValueError(f"{name} is given {len(values)} times; give it once")
    # A blank value (a form's empty field) is no value.
    since, until = query.get("since", [""])[0], query.get("until", [""])[0]
    countries = [code for code in query.get("country", []) if code.strip()]
    return window_of(since.strip() or None, until.strip() or None, countries)


def _feed(environ: WSGIEnvironment, history: History, country: str | None) -> bytes:
    """The feed, its links built from the address the request was sent to, in their canonical
    form and without the query (a token never ends up in a feed)."""
    base = application_uri(environ).rstrip("/") + "/"
    feed_url = f"{base}feeds/{country or 'all'}.atom"
    report_url = f"{base}?country={country}#country-{country}" if country else base
    return render_feed(history, country=country, feed_url=feed_url, report_url=report_url)


def _etag(version: str, base: str, route: _Route, window: Window) -> str:
    """A weak validator: the same data, asked the same way, has the same tag. (Weak: the body may
    still differ in ways that do not matter, such as when it was generated.)"""
    key = "\0".join((version, base, route.kind, repr(window)))
    return f'W/"{hashlib.sha256(key.encode()).hexdigest()[:32]}"'


def _matches(if_none_match: str, tag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``tag`` (weak comparison, as GET allows)."""
    offered = {value.strip().removeprefix("W/") for value in if_none_match.split(",")}
    return "*" in offered or tag.removeprefix("W/") in offered


def _text(status: HTTPStatus, message: str, *headers: tuple[str, str]) -> _Answer:
    return _Answer(status, f"{message}\n".encode(), _TEXT, headers)


def _bind(app: WSGIApplication, host: str, port: int) -> WSGIServer:
    try:
        return bind(app, host, port, _Handler)
    except (OSError, OverflowError) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).lower()
        raise MonitorError(f"cannot serve the report on {host} port {port}: {reason}") from None


class _Handler(WSGIRequestHandler):
    """One log line per request, without the query string (it may carry the token)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = code.value if isinstance(code, HTTPStatus) else code
        path = getattr(self, "path", "").partition("?")[0]
        log.info("%s %s %s", self.command or "-", path or "-", status)

    def log_message(self, format: str, *args: Any) -> None:
        # Malformed requests: the message may quote the request line, token included.
        log.debug("%s: %s", self.address_string(), _TOKEN_IN_TEXT.sub(r"\1…", format % args))
