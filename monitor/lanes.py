"""An httpx transport that keeps each host's connections in lanes of one connection each.

httpx's own pool (httpcore) looks at every connection it holds, with a system call for each
idle one, whenever it hands out or takes back a request, so the cost of a request grows with the
number of connections kept: with 16 connections to one host a conditional GET answered 304 costs
about 1 ms of CPU, against 0.4 ms with one. :class:`HostLanes` gives every host:port up to
``per_host`` lanes — an ordinary httpx transport limited to one connection — and lends a lane to
one request at a time, from the request until its response is closed. A connection is kept alive
and reused as before; each lookup costs the same however many hosts and connections there are.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

import httpx

_Key = tuple[bytes, bytes, int | None]


class HostLanes(httpx.AsyncBaseTransport):
    """Up to ``per_host`` one-connection transports (made by ``make_lane``) per scheme, host and
    port. A request waits for a free lane of its host when all are lent; the lane comes back
    when the response is closed (read to its end or not). One event loop."""

    def __init__(self, per_host: int, make_lane: Callable[[], httpx.AsyncBaseTransport]) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self._per_host = per_host
        self._make_lane = make_lane
        self._idle: dict[_Key, list[httpx.AsyncBaseTransport]] = {}
        self._made: dict[_Key, int] = {}
        self._waiting: dict[_Key, deque[asyncio.Future[httpx.AsyncBaseTransport]]] = {}
        self._lanes: list[httpx.AsyncBaseTransport] = []

    @property
    def lanes(self) -> int:
        """How many lanes exist (each holds at most one connection)."""
        return len(self._lanes)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        lane = await self._take(key)
        try:
            response = await lane.handle_async_request(request)
        except BaseException:
            self._give_back(key, lane)
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _GivesBack(stream, lambda: self._give_back(key, lane))
        return response

    async def aclose(self) -> None:
        lanes, self._lanes = self._lanes, []
        self._idle.clear()
        for lane in lanes:
            await lane.aclose()

    async def _take(self, key: _Key) -> httpx.AsyncBaseTransport:
        idle = self._idle.setdefault(key, [])
        if idle:
            return idle.pop()  # the most recently used: its connection is the likeliest alive
        if self._made.get(key, 0) < self._per_host:
            self._made[key] = self._made.get(key, 0) + 1
            lane = self._make_lane()
            self._lanes.append(lane)
            return lane
        turn: asyncio.Future[httpx.AsyncBaseTransport] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(turn)
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._give_back(key, turn.result())  # handed over just as the wait was cancelled
            raise

    def _give_back(self, key: _Key, lane: httpx.AsyncBaseTransport) -> None:
        waiting = self._waiting.get(key)
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(lane)
                return
        self._idle.setdefault(key, []).append(lane)


class _GivesBack(httpx.AsyncByteStream):
    """A response body that calls ``release`` once, when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()
