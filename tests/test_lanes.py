"""One-connection lanes per host (monitor.lanes) against a real asyncio server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from monitor.http import HttpSettings, build_client
from monitor.lanes import HostLanes

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"


class Server:
    """Counts connections and requests; each request is answered after ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.connections = 0
        self.requests = 0
        self.in_flight = 0
        self.peak = 0
        self.handlers: list[asyncio.Task[Any]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.append(task)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                await asyncio.sleep(self.delay)
                self.in_flight -= 1
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass  # the client closed the connection: the normal end of a kept-alive connection
        writer.close()
        await writer.wait_closed()


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[str]:
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    async with listening:
        yield f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}/page"
        # The client is closed by now: every connection is seen to its end.
        await asyncio.wait_for(asyncio.gather(*server.handlers), 5)


def run(go: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(go())


def lanes(per_host: int) -> HostLanes:
    return HostLanes(per_host, lambda: httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1)))


def test_requests_to_one_host_share_at_most_per_host_kept_connections() -> None:
    server = Server(delay=0.01)

    async def go() -> tuple[list[int], int]:
        async with serving(server) as url:
            transport = lanes(3)
            async with httpx.AsyncClient(transport=transport) as client:
                statuses = []
                for _ in range(4):  # four rounds of 12 concurrent requests
                    answers = await asyncio.gather(*(client.get(url) for _ in range(12)))
                    statuses += [a.status_code for a in answers]
                return statuses, transport.lanes

    statuses, made = run(go)
    assert statuses == [200] * 48
    assert made == 3
    assert server.peak == 3  # never more than per_host at once
    assert server.connections == 3  # and the connections were kept across the rounds
    assert server.requests == 48


def test_a_lane_comes_back_when_a_response_is_closed_unread_or_the_request_fails() -> None:
    server = Server()

    async def go() -> list[int]:
        async with serving(server) as url, httpx.AsyncClient(transport=lanes(1), timeout=2) as client:
            async with client.stream("GET", url):
                pass  # closed without reading the body
            for _ in range(3):  # a refused port: each failure gives its lane back
                with pytest.raises(httpx.ConnectError):
                    await client.get("http://127.0.0.1:9/")
            answers = await asyncio.wait_for(asyncio.gather(*(client.get(url) for _ in range(5))), 5)
            return [a.status_code for a in answers]

    assert run(go) == [200] * 5


def test_a_request_cancelled_while_waiting_for_a_lane_leaves_the_lane_free() -> None:
    server = Server(delay=0.2)

    async def go() -> int:
        async with serving(server) as url, httpx.AsyncClient(transport=lanes(1), timeout=5) as client:
            first = asyncio.create_task(client.get(url))
            waiting = asyncio.create_task(client.get(url))
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await (await asyncio.wait_for(first, 5)).aclose()
            answer = await asyncio.wait_for(client.get(url), 5)
            return answer.status_code

    assert run(go) == 200
    assert server.requests == 2  # the cancelled request was never sent


def test_hosts_do_not_wait_for_each_other() -> None:
    slow, quick = Server(delay=0.5), Server()

    async def go() -> float:
        async with (
            serving(slow) as slow_url,
            serving(quick) as quick_url,
            httpx.AsyncClient(transport=lanes(1), timeout=5) as client,
        ):
            busy = asyncio.create_task(client.get(slow_url))
            await asyncio.sleep(0.05)
            started = asyncio.get_running_loop().time()
            await client.get(quick_url)
            took = asyncio.get_running_loop().time() - started
            await busy
            return took

    assert run(go) < 0.3


def test_the_client_uses_lanes_unless_the_environment_names_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    async def transport_of() -> httpx.AsyncBaseTransport:
        client = build_client(HttpSettings())
        try:
            return client._transport
        finally:
            await client.aclose()

    assert isinstance(run(transport_of), HostLanes)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert not isinstance(run(transport_of), HostLanes)


def test_per_host_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_host"):
        lanes(0)
