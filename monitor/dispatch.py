"""Run many checks with only a few started at a time, per host and in all.

Starting every check of a cycle at once (thousands of tasks, each waiting for its host's turn)
costs memory, and every pass of Python's garbage collector walks all those waiting tasks: on
10,000 sources that was a fifth of the cycle. :func:`run_by_host` keeps one queue per host and
starts a check only when its host has room (``per_host``) and the whole run has room
(``total``), so the checks in flight are always spread over the hosts that can take them: a
slow host never holds up the others' queues.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def run_by_host(
    items: Sequence[T],
    host_of: Callable[[T], Hashable],
    run: Callable[[T], Awaitable[R]],
    *,
    per_host: int,
    total: int,
) -> list[R]:
    """``run(item)`` for every item, at most ``per_host`` at once per ``host_of(item)`` and
    ``total`` at once in all; the results in the order of ``items``. Items of one host start in
    their order. The first exception raised by a run cancels the runs in flight, starts no
    more, and is raised."""
    if per_host < 1 or total < 1:
        raise ValueError("per_host and total must be at least 1")
    queues: dict[Hashable, deque[int]] = {}
    for index, item in enumerate(items):
        queues.setdefault(host_of(item), deque()).append(index)
    busy: dict[Hashable, int] = dict.fromkeys(queues, 0)
    results: dict[int, R] = {}
    running: dict[asyncio.Task[R], tuple[int, Hashable]] = {}
    # The hosts with queued items and room for one more, in turn (and as a set, to look up).
    ready, waiting = deque(queues), set(queues)

    async def one(index: int) -> R:
        return await run(items[index])

    def make_ready(host: Hashable) -> None:
        if queues[host] and busy[host] < per_host and host not in waiting:
            ready.append(host)
            waiting.add(host)

    def start() -> None:
        while ready and len(running) < total:
            host = ready.popleft()
            waiting.discard(host)
            index = queues[host].popleft()
            busy[host] += 1
            running[asyncio.ensure_future(one(index))] = (index, host)
            make_ready(host)

    start()
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                index, host = running.pop(task)
                results[index] = task.result()
                busy[host] -= 1
                make_ready(host)
            start()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
    return [results[index] for index in range(len(items))]
