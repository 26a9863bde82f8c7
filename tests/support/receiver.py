"""A real webhook receiver on 127.0.0.1: records every POST, can be told to fail.

::

    with WebhookReceiver() as hook:
        send("json://127.0.0.1:%d/hook" % hook.port)
        [post] = hook.wait_for(1)
        assert post.json["title"] == "..."
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """Context manager: entering binds a free port and serves in a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._posts: list[Post] = []
        self._failures = 0
        self.fail_status = 503
        self._httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender went away in the middle of its request (a killed process): a
                    # message cut short was never delivered.
                    self.close_connection = True
                    return
                status = receiver._accept(Post(self.path, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` POSTs with ``status`` (they are not recorded as received)."""
        with self._lock:
            self._failures, self.fail_status = count, status

    @property
    def posts(self) -> list[Post]:
        with self._lock:
            return list(self._posts)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Post]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            posts = self.posts
            if len(posts) >= count:
                return posts
            time.sleep(0.02)
        raise AssertionError(f"expected {count} posts within {timeout}s, got {len(self.posts)}")

    def _accept(self, post: Post) -> int:
        with self._lock:
            if self._failures > 0:
                self._failures -= 1
                return self.fail_status
            self._posts.append(post)
            return 200


def settle(hook: WebhookReceiver, quiet: float = 0.05) -> None:
    """Wait until the requests a dead sender had already written have been read: until no new
    one arrives for ``quiet`` seconds."""
    count = -1
    while count != len(hook.posts):
        count = len(hook.posts)
        time.sleep(quiet)


class SlowReceiver(WebhookReceiver):
    """Records a POST as soon as it is read, then takes ``delay`` (a range of seconds, drawn from
    ``rng``) to answer: a sender killed in that window has delivered a message it has not
    recorded."""

    def __init__(self, rng: random.Random, delay: tuple[float, float]) -> None:
        super().__init__()
        self._rng = rng
        self._delay = delay

    def _accept(self, post: Post) -> int:
        status = super()._accept(post)
        time.sleep(self._rng.uniform(*self._delay))
        return status


def alert_id(post: Post) -> str:
    """The alert id of a received message: its X-Alert-Id header, which the footer repeats."""
    [header] = [v for k, v in post.headers.items() if k.lower() == "x-alert-id"]
    assert post.json["message"].rstrip().endswith(f"Alert id: {header}")
    return header
