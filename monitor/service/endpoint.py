"""The service's HTTP endpoint: ``/healthz`` for liveness probes, ``/metrics`` for Prometheus.

::

    GET|HEAD /healthz   200 "ok" when healthy; 503 and the reason otherwise
    GET|HEAD /metrics   the registry in Prometheus' text format (OpenMetrics when asked for)
    anything else       404

Served by the standard library's WSGI server, one thread per request, so a slow client never
holds up a scrape. Addresses are ``HOST:PORT`` with an IPv4 address, a host name (served on its
IPv4 address), or an IPv6 address in brackets (``[::1]:8765``); port 0 takes any free port (see
:attr:`Endpoint.url`).

No token is asked on any address: the metrics are counts labelled with source ids, change
classes and channel names (never URLs), and the health answer names no secret either; see
docs/security.md for exposing it beyond the machine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

from monitor.errors import ConfigError
from monitor.wsgiserve import base_url, bind

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

Healthy = Callable[[], str | None]  # None when healthy, else the reason it is not

_TEXT = "text/plain; charset=utf-8"
POLL_INTERVAL = 0.1  # seconds; how soon stop() takes effect


class Endpoint:
    """/healthz and /metrics on HOST:PORT, served from a daemon thread.

    ``healthy`` is called for every ``/healthz`` request; an exception it raises counts as
    unhealthy. Raises :class:`ConfigError` when ``address`` is not ``HOST:PORT``."""

    def __init__(self, address: str, registry: CollectorRegistry, healthy: Healthy) -> None:
        self._address = address
        self._host, self._port = _split(address)
        self._app = _App(make_wsgi_app(registry), healthy)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind the address and serve in a daemon thread until :meth:`stop`.

        Raises :class:`ConfigError` with a one-line reason when the address cannot be bound
        (in use, not an address of this host, unknown host name, no permission)."""
        if self._server is not None:
            raise RuntimeError("the endpoint is already started")
        try:
            server = bind(self._app, self._host, self._port, _QuietHandler)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise ConfigError(f"cannot serve /metrics on {self._address}: {reason}") from None
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(POLL_INTERVAL,), name="http-endpoint", daemon=True
        )
        self._thread.start()
        log.info("serving /healthz and /metrics on %s", self.url)

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` with the port actually bound; only once started."""
        if self._server is None:
            raise RuntimeError("the endpoint is not started")
        return base_url(self._server)

    def stop(self) -> None:
        """Stop serving and release the address; does nothing when not started."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = self._thread = None


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"cannot serve /metrics on {address!r}: expected HOST:PORT such as 127.0.0.1:8765")
    return host, int(port)


class _App:
    """The WSGI application: routes the two paths, answers HEAD like GET without a body."""

    def __init__(self, metrics: WSGIApplication, healthy: Healthy) -> None:
        self._metrics = metrics
        self._healthy = healthy

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if method not in ("GET", "HEAD") or path not in ("/healthz", "/metrics"):
            status, headers, body = "404 Not Found", [("Content-Type", _TEXT)], b"not found\n"
        elif path == "/healthz":
            status, headers, body = self._health()
        else:
            status, headers, body = self._scrape(environ)
        headers = [*headers, ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
        start_response(status, headers)
        # wsgiref keeps a Content-Length the application set when no body follows, as HEAD needs.
        return [] if method == "HEAD" else [body]

    def _health(self) -> tuple[str, list[tuple[str, str]], bytes]:
        try:
            problem = self._healthy()
        except Exception as exc:  # a failing health check is an unhealthy answer, not a 500
            log.exception("the health check failed")
            problem = f"the health check failed: {type(exc).__name__}: {exc}"
        if problem is None:
            return "200 OK", [("Content-Type", _TEXT)], b"ok\n"
        return "503 Service Unavailable", [("Content-Type", _TEXT)], f"{problem}\n".encode()

    def _scrape(self, environ: WSGIEnvironment) -> tuple[str, list[tuple[str, str]], bytes]:
        """prometheus_client's own application (format negotiation, gzip), asked with GET."""
        answer: dict[str, Any] = {}

        def keep(
            status: str, headers: list[tuple[str, str]], _exc_info: Any = None
        ) -> Callable[[bytes], object]:
            answer.update(status=status, headers=headers)
            return lambda _data: None

        try:
            body = b"".join(self._metrics({**environ, "REQUEST_METHOD": "GET"}, keep))
        except Exception:  # logged here, not as wsgiref's traceback on stderr
            log.exception("cannot collect the metrics")
            return "500 Internal Server Error", [("Content-Type", _TEXT)], b"cannot collect the metrics\n"
        headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
        return str(answer["status"]), headers, body


class _QuietHandler(WSGIRequestHandler):
    """No access log: Prometheus and probes call every few seconds."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
