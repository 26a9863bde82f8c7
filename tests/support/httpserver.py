"""A real, quiet HTTP/1.1 server on 127.0.0.1 for integration tests.

::

    with LocalServer() as server:
        server.route("/mali", "<html>...</html>", etag='"v1"')
        fetch(server.url("/mali"))
        assert server.hits("/mali") == 1

Paths are matched exactly against the request target, query string included. Unknown paths
answer 404. Each connection is served by its own thread, so slow answers do not hold up others.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; ``headers`` keep the names as the client sent them."""

    method: str
    path: str
    headers: dict[str, str]
    at: float = 0.0  # time.monotonic() when the request arrived


@dataclass(frozen=True)
class _Route:
    body: bytes
    status: int
    content_type: str
    headers: Mapping[str, str]
    etag: str | None
    last_modified: str | None
    delay: float


class LocalServer:
    """Context manager: entering binds a free port and serves in a daemon thread; leaving stops it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, Handler] = {}
        self._requests: list[RecordedRequest] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._httpd = _Server(("127.0.0.1", 0), _RequestHandler, self._dispatch)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; only while the server runs."""
        assert self._httpd is not None, "the server is not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Set what a GET of ``path`` answers (a str body is sent as UTF-8).

        With ``etag`` / ``last_modified`` the answer carries those validators, and a request whose
        If-None-Match / If-Modified-Since equals them gets 304 with an empty body. ``delay``
        seconds pass before the answer starts.
        """
        data = body.encode() if isinstance(body, str) else body
        spec = _Route(data, status, content_type, dict(headers or {}), etag, last_modified, delay)
        self.route_handler(path, functools.partial(_answer, spec))

    def route_handler(self, path: str, fn: Handler) -> None:
        """Let ``fn`` write the whole answer to a GET of ``path`` itself.

        ``fn`` uses the handler's ``send_response`` / ``send_header`` / ``end_headers`` /
        ``wfile``. The connection is kept alive unless ``fn`` sets ``handler.close_connection``,
        which it must when the answer has no exact framing.
        """
        with self._lock:
            self._routes[path] = fn

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def hits(self, path: str) -> int:
        """How many requests for ``path`` arrived."""
        return sum(1 for request in self.requests if request.path == path)

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    handler.command, handler.path, dict(handler.headers.items()), time.monotonic()
                )
            )
            fn = self._routes.get(handler.path)
        if fn is None:
            _send(handler, 404, b"not found", {"Content-Type": "text/plain"})
        else:
            fn(handler)


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog is 5: a burst of connections (a service starting its
    # first round, a crash test restarting it) overflows it, and each dropped SYN is retried by
    # the client's kernel after 1, 2, 4 s... long enough to time a check out.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler_class: type[BaseHTTPRequestHandler],
        dispatch: Handler,
    ) -> None:
        super().__init__(address, handler_class)
        self.dispatch = dispatch

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early are part of the tests; nothing is printed."""


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections end on their own instead of outliving the test.
    timeout = 5

    def do_GET(self) -> None:
        assert isinstance(self.server, _Server)
        self.server.dispatch(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def _answer(route: _Route, handler: BaseHTTPRequestHandler) -> None:
    if route.delay:
        time.sleep(route.delay)
    given = {"ETag": route.etag, "Last-Modified": route.last_modified}
    validators = {name: value for name, value in given.items() if value is not None}
    if _matches(route, handler):
        _send(handler, 304, b"", validators)
        return
    headers = {"Content-Type": route.content_type, **validators, **route.headers}
    _send(handler, route.status, route.body, headers)


def _matches(route: _Route, handler: BaseHTTPRequestHandler) -> bool:
    etag = handler.headers.get("If-None-Match")
    since = handler.headers.get("If-Modified-Since")
    return (route.etag is not None and etag == route.etag) or (
        route.last_modified is not None and since == route.last_modified
    )


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    # send_response_only, so that a route can set its own Date header instead of adding a second one.
    handler.send_response_only(status)
    for name, value in {"Date": handler.date_time_string(), **headers}.items():
        handler.send_header(name, value)
    if status != 304:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
