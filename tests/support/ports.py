"""Local TCP ports for tests: one nothing listens on (yet)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Connecting to it is refused at once, so it stands for a service that is down; a server
    started on it later brings the service up at the same address.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
