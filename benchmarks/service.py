"""The service's own cost per check: ``python benchmarks/service.py [-n N] [--database URL]``.

Serves N small advisory pages from a local HTTP server on 127.0.0.1 and runs one worker
(:class:`monitor.service.runner.Service`, the real scheduler) on them for three cycles of a
short interval, then prints:

* how long a cycle of N sources takes, and checks per second (fetch, parse, diff, record, and
  the scheduling around it: taking the source with a lease, recording the next due time);
* the time one claim of a due source takes in the database (``Claims.claim``), alone;
* the peak memory (RSS) of the process.

The pages change between cycles, so every check of cycles 2 and 3 records a change. Without
``--database`` a SQLite file in a temporary folder is used. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from monitor.config import Config, loads
from monitor.pipeline import CheckReport
from monitor.service.runner import Service
from monitor.store import Store


class _Pages(BaseHTTPRequestHandler):
    version = 0
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = (
            "<html><body><div class='advice'><p>Advice for this country, version "
            f"{_Pages.version} ({self.path}). Avoid the border areas.</p></div></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _server() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server


def _config(port: int, count: int, interval: float) -> Config:
    lines = [
        f"defaults: {{timeout: 30s, host_spacing: 0, interval: {interval:g}s, concurrency: 32, "
        "per_host: 32}",
        "sources:",
    ]
    lines += [
        f"  - {{id: s{i:04d}, kind: html, url: 'http://127.0.0.1:{port}/s{i}', countries: [ML], "
        "options: {select: .advice}}"
        for i in range(count)
    ]
    return loads("\n".join(lines), path=Path("benchmark.yaml"), environ={})


def _cycles(reports: list[CheckReport], interval: float) -> list[tuple[float, int]]:
    """(duration in seconds, checks) of each cycle: checks grouped by interval-long windows."""
    start = min(r.started_at for r in reports)
    cycles: dict[int, list[CheckReport]] = {}
    for report in reports:
        cycles.setdefault(int((report.started_at - start).total_seconds() // interval), []).append(report)
    result = []
    for group in cycles.values():
        first = min(r.started_at for r in group)
        last = max(r.started_at + timedelta(milliseconds=r.duration_ms) for r in group)
        result.append(((last - first).total_seconds(), len(group)))
    return result


def _claim_ms(store: Store, count: int) -> float:
    claims = store.claims
    now = datetime.now(UTC) + timedelta(days=1)
    times = []
    for i in range(min(count, 200)):
        started = time.perf_counter()
        claims.claim("benchmark", {f"s{i:04d}": now}, now, timedelta(seconds=60))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _run(config: Config, store: Store, seconds: float) -> list[CheckReport]:
    reports: list[CheckReport] = []
    # No jitter: every source falls due at once, so a cycle shows the worker's throughput.
    service = Service(config, store, on_report=reports.append, rand=lambda: 0.0)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    interval = config.defaults.interval.total_seconds() if config.defaults.interval else 60
    for _ in range(int(seconds // interval)):
        await asyncio.sleep(interval)
        _Pages.version += 1
    await asyncio.sleep(seconds % interval)
    stop.set()
    await running
    return reports


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="number of sources (default 500)")
    parser.add_argument("--interval", type=float, default=20.0, help="seconds between checks (default 20)")
    parser.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    server = _server()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{tmp}/benchmark.db"
        config = _config(server.server_address[1], args.n, args.interval)
        with Store.open(url) as store:
            store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), datetime.now(UTC))
            reports = asyncio.run(_run(config, store, args.interval * 2.5))
            claim = _claim_ms(store, args.n)
            changes = store.counts()["changes"]
    server.shutdown()
    server.server_close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database: {url.split('://')[0]}; {args.n} sources; interval {args.interval:g} s")
    for number, (duration, checks) in enumerate(_cycles(reports, args.interval), 1):
        rate = checks / duration if duration else float("inf")
        print(f"cycle {number}: {checks} checks in {duration:.2f} s ({rate:.0f} checks/s)")
    print(f"changes recorded: {changes}")
    print(f"one claim of a due source: {claim:.2f} ms (median)")
    print(f"peak memory (RSS): {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
