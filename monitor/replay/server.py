"""The replay's web server: each seed source's file for the current simulated time, on 127.0.0.1.

Every source is served at its URL's path (and query), as its publisher served it: the
file's Content-Type from the timeline, a strong ``ETag`` (a hash of the file), ``Last-Modified``
(when the publisher started serving the file) and ``Date`` in simulated time, and a 304 for a
conditional request whose validators still match, so the monitor's conditional GETs work as
they do on the real sites. Before a source's first file, or at a path no source has: 404.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from wsgiref.simple_server import WSGIRequestHandler

from monitor.errors import MonitorError
from monitor.replay.timeline import SeedSource, Served, Timeline
from monitor.wsgiserve import base_url, bind

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05  # seconds; how soon stopping takes effect


@dataclass(frozen=True)
class _File:
    body: bytes
    etag: str


class SeedSite:
    """The WSGI application: what the seed's publishers serve at the clock's current moment.

    The files are read once, when the site is made; ``requests`` counts the answers per
    (source id, status) for the replay's summary."""

    def __init__(self, folder: Path, timeline: Timeline, now: Callable[[], datetime]) -> None:
        self._now = now
        self._sources = {source.path: source for source in timeline.sources}
        self._files: dict[tuple[str, str], _File] = {}
        for source in timeline.sources:
            for served in source.snapshots:
                body = (folder / source.id / served.file).read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
                self._files[source.id, served.file] = _File(body, etag)
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, int]] = Counter()

    @property
    def requests(self) -> Counter[tuple[str, int]]:
        with self._lock:
            return Counter(self._requests)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        query = environ.get("QUERY_STRING", "")
        path = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        now = self._now()
        source = self._sources.get(path)
        served = source.serving(now) if source is not None else None
        date = ("Date", _http_date(now))
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [date, ("Allow", "GET, HEAD"), *_TEXT])
            return [b"method not allowed\n"]
        if source is None or served is None:
            self._count(source.id if source else "", HTTPStatus.NOT_FOUND)
            start_response("404 Not Found", [date, *_TEXT])
            return [b"not found\n"]
        file = self._files[source.id, served.file]
        validators = [("ETag", file.etag), ("Last-Modified", _http_date(served.from_))]
        if _not_modified(environ, file.etag, served):
            self._count(source.id, HTTPStatus.NOT_MODIFIED)
            start_response("304 Not Modified", [date, *validators])
            return []
        self._count(source.id, HTTPStatus.OK)
        headers = [date, *validators, ("Content-Type", source.content_type)]
        start_response("200 OK", [*headers, ("Content-Length", str(len(file.body)))])
        return [] if method == "HEAD" else [file.body]

    def _count(self, source_id: str, status: HTTPStatus) -> None:
        with self._lock:
            self._requests[source_id, status.value] += 1


_TEXT = (("Content-Type", "text/plain; charset=utf-8"),)


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _not_modified(environ: WSGIEnvironment, etag: str, served: Served) -> bool:
    """RFC 9110: If-None-Match when sent (weak comparison), else If-Modified-Since."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if not if_modified_since:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    return since.tzinfo is not None and served.from_.replace(microsecond=0) <= since


class _QuietHandler(WSGIRequestHandler):
    """Requests are counted by the site, not logged one per line."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("seed server: " + format, *args)


class SeedServer:
    """Context manager: serves ``site`` on 127.0.0.1 (any free port) in a thread."""

    def __init__(self, site: SeedSite) -> None:
        self.site = site
        try:
            self._server = bind(site, "127.0.0.1", 0, _QuietHandler)
        except OSError as exc:
            raise MonitorError(f"cannot start the seed server on 127.0.0.1: {exc.strerror or exc}") from None
        self.url = base_url(self._server)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_INTERVAL,), name="seed-server", daemon=True
        )

    def url_of(self, source: SeedSource) -> str:
        """Where this server serves ``source``."""
        return self.url + source.path

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
