"""``monitor report`` on a large stored history.

``python benchmarks/history.py [--changes N] [--database URL]``

Writes a history of N changes (default 10,000: 20 countries × 5 sources × N/100 versions, each
version a 10 KB advisory text) into a fresh database through the store, as checks would, then
times what ``monitor report`` does with it, three times each, and prints the medians:

* reading the history from the database (:func:`monitor.report.load.load_history`);
* rendering the HTML (:func:`monitor.report.html.render_report`) and the file's size;
* ``monitor history --json``'s serialisation of every change;
* the Atom feed of all countries;
* the whole ``monitor report`` command in a new process (start-up and imports included).

Without ``--database`` a SQLite file in a temporary folder is used; a PostgreSQL URL is
emptied of this benchmark's tables first (use a scratch database). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from monitor.config import Config, loads
from monitor.database import Base
from monitor.models import Change, ChangeClass, Outcome, Record, Section
from monitor.report.atom import render_feed
from monitor.report.export import as_json
from monitor.report.history import History, Window
from monitor.report.html import render_report
from monitor.report.load import load_history
from monitor.store import ChangeWrite, CheckWrite, SnapshotWrite, Store

SOURCES = 5
COUNTRIES = 20
START = datetime(2025, 1, 1, tzinfo=UTC)
CLASSES = (
    ChangeClass.UPDATE,
    ChangeClass.NOISE,
    ChangeClass.HEIGHTENED,
    ChangeClass.RELAXED,
    ChangeClass.SEVERE,
)
T = TypeVar("T")


def _config_text() -> str:
    lines = [
        f"  - {{id: s{i}, kind: html, url: 'https://example.org/{i}', publisher: Ministry {i}, "
        "options: {select: .advice}}"
        for i in range(SOURCES)
    ]
    return "sources:\n" + "\n".join(lines) + "\n"


def _config() -> Config:
    return loads(_config_text(), path=Path("bench.yaml"), environ={})


def _command(scratch: Path, url: str) -> float:
    """Seconds ``monitor report`` takes in a new process (median of three)."""
    config = scratch / "bench.yaml"
    config.write_text(_config_text())
    out = scratch / "cli-report.html"
    command = [sys.executable, "-m", "monitor", "--config", str(config), "--database", url, "report"]
    seconds, _ = _median(
        lambda: subprocess.run([*command, "--out", str(out)], check=True, capture_output=True)
    )
    return seconds


def _codes() -> list[str]:
    return [f"{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(COUNTRIES)]


def _record(country: str, version: int) -> Record:
    level = 1 + version % 4
    text = f"Version {version} of the advice for {country}. " + "The situation remains volatile. " * 300
    return Record(
        key=country,
        title=f"Travel advice for {country}",
        url=f"https://example.org/advice/{country}",
        country=country,
        level=level,
        level_label=f"Level {level}",
        updated_at=START + timedelta(hours=version),
        sections=(Section("summary", text),),
    )


def _fill(store: Store, config: Config, versions: int) -> None:
    store.sync_sources([(s.id, s.kind, s.url) for s in config.sources], START)
    for source in range(SOURCES):
        for version in range(versions + 1):
            at = START + timedelta(hours=version, minutes=source)
            changes = tuple(
                ChangeWrite(
                    code,
                    Change(
                        code,
                        CLASSES[(version + source) % len(CLASSES)],
                        (f"level raised: “Version {version} of the advice.”",),
                        f"--- before\n+++ after\n-Version {version - 1} of the advice.\n"
                        f"+Version {version} of the advice.\n",
                        1 + (version - 1) % 4,
                        1 + version % 4,
                        at,
                    ),
                )
                for code in _codes()
                if version
            )
            store.save_check(
                CheckWrite(
                    source_id=f"s{source}",
                    started_at=at,
                    duration_ms=100,
                    http_status=200,
                    size=10_000,
                    outcome=Outcome.CHANGED if changes else Outcome.NEW,
                    error=None,
                    validators=None,
                    body=None,
                    body_hash=None,
                    snapshots=tuple(SnapshotWrite(code, _record(code, version)) for code in _codes()),
                    changes=changes,
                )
            )


def _median(fn: Callable[[], T], runs: int = 3) -> tuple[float, T]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    assert result is not None
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=10_000, help="changes to store (a multiple of 100)")
    parser.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    versions = max(1, args.changes // (SOURCES * COUNTRIES))
    config = _config()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database or f"sqlite:///{Path(scratch) / 'history.db'}"
        if args.database:
            engine = sa.create_engine(url)
            Base.metadata.drop_all(engine)
            with engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
            engine.dispose()
        with Store.open(url) as store:
            started = time.perf_counter()
            _fill(store, config, versions)
            filled = time.perf_counter() - started
            now = START + timedelta(hours=versions + 1)
            load_s, history = _median(lambda: load_history(store, config, Window(), now))
        render_s, page = _median(lambda: render_report(history))
        json_s, _ = _median(lambda: json.dumps([as_json(c) for c in history.changes]))
        feed_s, _ = _median(lambda: _feed(history))
        command_s = _command(Path(scratch), url)
        report = Path(scratch) / "report.html"
        report.write_text(page, encoding="utf-8")
        print(f"database: {url.split(':', 1)[0]}; {len(history.changes)} changes stored in {filled:.1f} s")
        print(f"read the history:     {load_s:6.2f} s ({len(history.points)} points)")
        print(f"render the report:    {render_s:6.2f} s ({report.stat().st_size / 1e6:.1f} MB)")
        print(f"monitor report total: {load_s + render_s:6.2f} s")
        print(f"history as JSON:      {json_s:6.2f} s")
        print(f"Atom feed (all):      {feed_s:6.2f} s")
        print(f"`monitor report` run: {command_s:6.2f} s (a new process, start-up included)")


def _feed(history: History) -> bytes:
    return render_feed(
        history, country=None, feed_url="http://127.0.0.1/feeds/all.atom", report_url="http://127.0.0.1/"
    )


if __name__ == "__main__":
    main()
