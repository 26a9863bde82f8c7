"""run_by_host: few checks started at a time, per host and in all, results in order."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from monitor.dispatch import run_by_host


class Probe:
    """Runs that sleep ``delay[host]`` and note how many of each host were in flight at once."""

    def __init__(self, delay: dict[str, float]) -> None:
        self.delay = delay
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total_peak = 0
        self.started: list[str] = []

    async def run(self, item: str) -> str:
        host = item.split("/", maxsplit=1)[0]
        self.started.append(item)
        self.now[host] += 1
        self.peak[host] = max(self.peak[host], self.now[host])
        self.total_peak = max(self.total_peak, sum(self.now.values()))
        await asyncio.sleep(self.delay.get(host, 0.001))
        self.now[host] -= 1
        return item.upper()


def host(item: str) -> str:
    return item.split("/", maxsplit=1)[0]


def test_results_come_in_order_within_both_bounds() -> None:
    items = [f"{h}/{i}" for i in range(30) for h in ("a", "b", "c")]
    probe = Probe({})
    results = asyncio.run(run_by_host(items, host, probe.run, per_host=2, total=5))
    assert results == [item.upper() for item in items]
    assert max(probe.peak.values()) == 2
    assert probe.total_peak == 5
    for name in "abc":  # each host's items start in their order
        assert [i for i in probe.started if host(i) == name] == [i for i in items if host(i) == name]


def test_a_slow_host_does_not_hold_up_the_others() -> None:
    items = [f"slow/{i}" for i in range(20)] + [f"quick/{i}" for i in range(20)]
    probe = Probe({"slow": 0.05, "quick": 0.001})

    async def go() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        finished: dict[str, float] = {}

        async def run(item: str) -> str:
            result = await probe.run(item)
            finished[item] = loop.time() - started
            return result

        await run_by_host(items, host, run, per_host=2, total=8)
        return max(t for i, t in finished.items() if i.startswith("quick"))

    quick_done = asyncio.run(go())
    assert quick_done < 0.2  # the slow host's 20 items take 0.5 s at two at a time
    assert probe.peak["slow"] == 2


def test_the_first_error_cancels_the_runs_in_flight_and_starts_no_more() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def run(item: int) -> int:
        started.append(item)
        try:
            if item == 3:
                raise RuntimeError("boom")
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return item

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(run_by_host(list(range(100)), lambda i: i % 2, run, per_host=3, total=4))
    assert len(started) <= 5
    assert sorted(cancelled) == sorted(set(started) - {3})


def test_nothing_to_run() -> None:
    assert asyncio.run(run_by_host([], host, Probe({}).run, per_host=1, total=1)) == []


@pytest.mark.parametrize(("per_host", "total"), [(0, 1), (1, 0)])
def test_bounds_must_be_positive(per_host: int, total: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        asyncio.run(run_by_host(["a/1"], host, Probe({}).run, per_host=per_host, total=total))
