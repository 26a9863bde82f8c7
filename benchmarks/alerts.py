"""Deliver queued alerts through apprise to a local webhook: ``python benchmarks/alerts.py [-n N]``.

Queues N alerts the way checks do (changes written with their outbox rows by ``save_check``),
on N records of one source and one ``json://`` channel pointed at a webhook receiver on
127.0.0.1, then drains the outbox with ``Deliverer.deliver_due`` and prints:

* the time to queue them (``save_check`` with the router, per change);
* delivery throughput (messages per second, one channel, real HTTP through apprise);
* the outbox's size on SQLite per alert (after a WAL checkpoint).

With ``--channels K`` the same changes go to K channels, each with its own receiver, to show
that channels are served in parallel. See benchmarks/README.md for measured figures.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from monitor.alerts.delivery import Deliverer
from monitor.alerts.routing import Router
from monitor.config import Config, loads
from monitor.models import Change, ChangeClass, Outcome, Record, Section
from monitor.store import ChangeWrite, CheckWrite, SnapshotWrite, Store

T0 = datetime(2025, 11, 7, 9, 0, tzinfo=UTC)


class _Hook(BaseHTTPRequestHandler):
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with _Hook.lock:
            _Hook.received += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _receiver() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server


def _config(ports: list[int]) -> Config:
    channels = "\n".join(
        f'  - {{name: hook{i}, url: "json://127.0.0.1:{port}/hook", min_class: update}}'
        for i, port in enumerate(ports)
    )
    text = f"""
sources:
  - {{id: bench, kind: html, url: "https://example.org/advice", countries: [ML], publisher: Bench}}
alerts:
{channels}
"""
    return loads(text, path=Path("bench.yaml"), environ={})


def _record(key: str, text: str) -> Record:
    return Record(
        key=key,
        title=f"Advice {key}",
        url="https://example.org/advice",
        country="ML",
        sections=(Section("advice", text),),
    )


def _check(key: str, snapshot: Record, change: Change | None, at: datetime) -> CheckWrite:
    return CheckWrite(
        source_id="bench",
        started_at=at,
        duration_ms=1,
        http_status=200,
        size=1,
        outcome=Outcome.CHANGED if change else Outcome.NEW,
        snapshots=(SnapshotWrite(key, snapshot),),
        changes=(ChangeWrite(key, change),) if change else (),
    )


def _queue(store: Store, router: Router, count: int) -> float:
    """Write ``count`` changes with their alerts; returns the seconds the writes took."""
    for n in range(count):
        store.save_check(_check(f"K{n}", _record(f"K{n}", "Avoid all travel."), None, T0))
    started = time.perf_counter()
    for n in range(count):
        key = f"K{n}"
        after = _record(key, "Avoid all travel. Nationals should leave now.")
        change = Change(key, ChangeClass.CRITICAL, ("nationals urged to leave",), "-a\n+b", 3, 4)
        store.save_check(_check(key, after, change, T0 + timedelta(seconds=1)), router)
    return time.perf_counter() - started


def _outbox_bytes(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = conn.execute("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE '%alerts%'").fetchone()
    return int(rows[0] or 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="alerts per channel (default 500)")
    parser.add_argument("--channels", type=int, default=1, help="channels (default 1)")
    args = parser.parse_args(argv)
    servers = [_receiver() for _ in range(args.channels)]
    config = _config([int(s.server_address[1]) for s in servers])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        store = Store.open(f"sqlite:///{path}")
        store.sync_sources([("bench", "html", "https://example.org/advice")], T0)
        queued = _queue(store, Router.from_config(config), args.n)
        total = args.n * args.channels
        started = time.perf_counter()
        sent = 0
        while sent < total:
            sent += sum(len(d.alert_ids) for d in Deliverer(config, store).deliver_due() if d.sent)
        elapsed = time.perf_counter() - started
        size = _outbox_bytes(path)
        store.close()
    with _Hook.lock:
        received, _Hook.received = _Hook.received, 0
    for server in servers:
        server.shutdown()
        server.server_close()
    print(
        f"queue: {args.n} changes with {total} alerts in {queued:.2f} s "
        f"({queued / args.n * 1000:.2f} ms per change, its alerts included)"
    )
    print(
        f"deliver: {total} messages to {args.channels} channel(s) in {elapsed:.2f} s "
        f"({total / elapsed:.0f} messages/s; received {received})"
    )
    print(f"outbox on SQLite: {size / total:.0f} bytes per alert (table and indexes)")


if __name__ == "__main__":
    main()
