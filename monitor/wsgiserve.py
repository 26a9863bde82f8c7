"""The standard library's WSGI server, one thread per request, on IPv4 or IPv6.

Shared by the service's ``/healthz`` and ``/metrics`` endpoint and ``monitor serve``.
"""

from __future__ import annotations

import logging
import socket
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger(__name__)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a client that never finishes its request does not delay the stop

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer are routine; socketserver would print a traceback.
        log.debug("error while answering %s", client_address, exc_info=True)


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


def bind(app: WSGIApplication, host: str, port: int, handler: type[WSGIRequestHandler]) -> WSGIServer:
    """A threading WSGI server bound to ``host`` (an IPv6 address with or without brackets, an
    IPv4 address, or a name served on its IPv4 address) and ``port`` (0: any free port).
    Raises ``OSError`` (or ``OverflowError`` for a port out of range) when it cannot bind."""
    bare = host.strip().removeprefix("[").removesuffix("]")
    server_class = _IPv6Server if ":" in bare else _Server
    return make_server(bare, port, app, server_class, handler)


def base_url(server: WSGIServer) -> str:
    """``http://HOST:PORT`` with the port actually bound (an IPv6 host in brackets)."""
    host, port = str(server.server_address[0]), server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
