"""The monitor on N advisory pages served by a real nginx on 127.0.0.1: cold, warm, warm with changes.

    python benchmarks/fleet.py                       # N = 1,000 and 10,000, 3 runs each
    python benchmarks/fleet.py --n 1000 --runs 1
    python benchmarks/fleet.py --n 1000 --latency 50 # warm cycles, every answer 50 ms late
    python benchmarks/fleet.py --n 1000 --database postgresql+psycopg://postgres@127.0.0.1:5432/test

For each N: the fixtures are generated (``bench_fixtures.py``), nginx serves them
(``nginx.py``), and a configuration watches every page with the generic ``html`` kind (the
advisory's ``main article``). Each cycle is one process doing what ``monitor run --once`` does
(every source is due: the interval is 1 s), without printing its table:

* cold: an empty database, every page fetched, parsed and stored;
* warm: nothing changed since the last cycle;
* changed: 10 % of the advisories changed (``--mutate``) since the last cycle.

Per scenario: wall seconds, CPU seconds (user + sys) and peak RSS of the cycle's process, the
requests nginx answered 200 and 304, the snapshots written and the changes recorded, and the
database's growth; medians over ``--runs`` runs (a run is cold, then warm, then changed, each
from the state the previous one left). All sources are on one host: the benchmark raises the
per-host limit to the overall concurrency and removes the spacing between requests to a host.

``--latency MS`` models publishers on the internet rather than on loopback: nginx answers every
request MS milliseconds late (``Nginx(delay=...)``, a timer in nginx, so no proxy competes for
the CPU). After one cold cycle (shown, not the target) it runs ``--runs`` warm cycles on that
database, labelled e.g. ``warm+50ms``, and says how many connections nginx saw and how long its
requests took. Waiting alone then takes N / concurrency x MS; ``--concurrency`` (16 by default,
the monitor's default) sets the requests in flight, in every scenario.

``--database URL`` runs against PostgreSQL: each run gets a new database on that server
(``scratchdb.py``), dropped afterwards; its growth is ``pg_database_size``. Without it, each run
has a new SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fixtures import generate, mutate
from nginx import Conditional, Nginx, Request
from scratchdb import database_size, scratch_database

CONCURRENCY = 16


@dataclass(frozen=True)
class Figures:
    """One cycle: its process's wall and CPU seconds and peak RSS, nginx's answers, what was
    stored, and how much the database grew (KB)."""

    wall: float
    cpu: float
    rss_mb: float
    ok: int
    not_modified: int
    snapshots: int
    changes: int
    db_growth_kb: float


def write_config(
    folder: Path,
    base_url: str,
    slugs: list[str],
    database: str,
    *,
    interval: str = "1s",
    concurrency: int = CONCURRENCY,
) -> Path:
    """``folder/monitor.yaml``: every page as an ``html`` source, due every ``interval`` (every
    second by default), ``concurrency`` requests in flight (16, the monitor's default), the
    per-host limit at the same and no spacing between requests to the host."""
    lines = [
        f"database: {database}",
        "defaults:",
        f"  interval: {interval}",
        f"  concurrency: {concurrency}",
        f"  per_host: {concurrency}",
        "  host_spacing: 0s",
        "  timeout: 30s",
        "sources:",
    ]
    for slug in slugs:
        lines += [
            f"  - id: {slug}",
            "    kind: html",
            f"    url: {base_url}/advice/{slug}.html",
            "    options: {select: ['main article']}",
        ]
    path = folder / "monitor.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class Child:
    """A finished child process: its standard output, wall time, CPU seconds and peak RSS."""

    output: str
    wall: float
    cpu: float
    rss_mb: float


def run_child(command: list[str], *, env: dict[str, str] | None = None) -> Child:
    """Run ``command`` to its end; its figures are its own, from the kernel (``wait4``).
    Raises SystemExit with the end of its standard error when it fails."""
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=env
        )
        assert process.stdout is not None
        with process.stdout:
            output = process.stdout.read().decode("utf-8", errors="replace")
        # Reaped here, for its resource usage alone (not the parent's other children's).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if process.returncode != 0:
            stderr.seek(0)
            errors = stderr.read().decode("utf-8", errors="replace")[-2000:]
            raise SystemExit(f"{Path(command[0]).name} failed (exit code {process.returncode}):\n{errors}")
    return Child(output, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def cycle(config: Path, nginx: Nginx, database: str) -> Figures:
    """One cycle in its own process; figures from the kernel (rusage) and from nginx's log."""
    before_statuses, before_size = nginx.statuses(), database_size(database)
    child = run_child([sys.executable, __file__, "_cycle", str(config)])
    counts = json.loads(child.output)
    return figures_of(
        child,
        nginx,
        before_statuses,
        snapshots=counts["snapshots"],
        changes=counts["changes"],
        growth=database_size(database) - before_size,
    )


def figures_of(
    child: Child,
    nginx: Nginx,
    before: collections.Counter[int],
    *,
    snapshots: int,
    changes: int,
    growth: int,
) -> Figures:
    """A cycle's figures: the child's own, nginx's answers since ``before``, what was stored."""
    time.sleep(0.2)  # nginx writes its log line after answering
    statuses = nginx.statuses() - before
    return Figures(
        wall=child.wall,
        cpu=child.cpu,
        rss_mb=child.rss_mb,
        ok=statuses.get(200, 0),
        not_modified=statuses.get(304, 0),
        snapshots=snapshots,
        changes=changes,
        db_growth_kb=growth / 1024,
    )


def _cycle(config_path: str) -> None:
    """The child: one `run --once` cycle, then the counts of what it did, as JSON."""
    from monitor import config as config_module
    from monitor.service.runner import freeze_startup, run_once
    from monitor.store import Store

    config = config_module.load(Path(config_path))
    store = Store.open(config.database)
    store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), _now())
    freeze_startup()  # as `monitor run` does
    before = store.counts()
    reports, _ = asyncio.run(run_once(config, store))
    after = store.counts()
    store.close()
    failed = [r for r in reports if not r.outcome.ok]
    if failed:
        print(f"{len(failed)} checks failed, e.g. {failed[0].source_id}: {failed[0].error}", file=sys.stderr)
    print(
        json.dumps(
            {
                "checks": len(reports),
                "snapshots": after["snapshots"] - before["snapshots"],
                "changes": after["changes"] - before["changes"],
            }
        )
    )


def _now() -> Any:
    from monitor.pipeline import utcnow

    return utcnow()


def run(
    n: int, runs: int, database: str | None = None, concurrency: int = CONCURRENCY
) -> dict[str, list[Figures]]:
    """Cold, warm and changed cycles on ``n`` pages, ``runs`` times, each run on a new database
    (SQLite, or one created on the PostgreSQL server of ``database``), with ``concurrency``
    requests in flight."""
    results: dict[str, list[Figures]] = {"cold": [], "warm": [], "changed": []}
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        folder = Path(tmp)
        fixtures = generate(folder / "site", n)
        slugs = [page.stem for page in fixtures.pages]
        # "before": a 304 to an If-Modified-Since at or after the file's time (see nginx.py); the
        # monitor sends the server's own validators, so it gets 304s under either setting.
        with Nginx(fixtures.root, log=True, conditional="before") as nginx:
            for index in range(runs):
                with scratch_database(database, folder, f"fleet_run{index}") as url:
                    config = write_config(folder, nginx.url, slugs, url, concurrency=concurrency)
                    results["cold"].append(cycle(config, nginx, url))
                    time.sleep(1.1)  # every source due again (interval 1 s)
                    results["warm"].append(cycle(config, nginx, url))
                    mutate(fixtures, 0.1, seed=index + 1)
                    time.sleep(1.1)
                    results["changed"].append(cycle(config, nginx, url))
    return results


@dataclass(frozen=True)
class Traffic:
    """What nginx saw during one cycle: requests, distinct connections, request times (s)."""

    requests: int
    connections: int
    fastest: float
    median: float


def traffic(entries: list[Request]) -> Traffic:
    """The requests of one cycle (nginx's log entries) summed up."""
    times = [entry.seconds for entry in entries]
    return Traffic(
        requests=len(entries),
        connections=len({entry.connection for entry in entries}),
        fastest=min(times, default=0.0),
        median=statistics.median(times) if times else 0.0,
    )


def run_latency(
    n: int, runs: int, delay: float, database: str | None = None, concurrency: int = CONCURRENCY
) -> tuple[Figures, list[Figures], list[Traffic]]:
    """One cold cycle, then ``runs`` warm cycles, on ``n`` pages served ``delay`` seconds late.

    Returns the cold cycle's figures, each warm cycle's, and what nginx saw in each warm cycle.
    """
    warm: list[Figures] = []
    seen: list[Traffic] = []
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        folder = Path(tmp)
        fixtures = generate(folder / "site", n)
        slugs = [page.stem for page in fixtures.pages]
        with (
            Nginx(fixtures.root, log=True, conditional="before", delay=delay) as nginx,
            scratch_database(database, folder, "fleet_latency") as url,
        ):
            config = write_config(folder, nginx.url, slugs, url, concurrency=concurrency)
            cold = cycle(config, nginx, url)
            for _ in range(runs):
                time.sleep(1.1)  # every source due again (interval 1 s)
                logged = len(nginx.requests())
                warm.append(cycle(config, nginx, url))
                seen.append(traffic(nginx.requests()[logged:]))
    return cold, warm, seen


def median(figures: list[Figures]) -> Figures:
    """Each figure's median over cycles of one scenario."""
    fields = Figures.__dataclass_fields__
    return Figures(**{name: statistics.median(getattr(f, name) for f in figures) for name in fields})


HEADER = (
    f"{'N':>6} {'scenario':>10} {'wall s':>7} {'cpu s':>7} {'rss MB':>7} {'200':>6} {'304':>6} "
    f"{'snaps':>6} {'changes':>7} {'db +KB':>8}"
)
TARGET_LATENCY_WALL = 5.0  # seconds: warm 1,000 with 50 ms per request


def main(argv: list[str] | None = None) -> None:
    """Print the figures per N and scenario (medians over runs)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--n",
        type=int,
        action="append",
        help="sources (repeatable; default 1000 and 10000, 1000 with --latency)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs (with --latency: warm cycles); default 3")
    parser.add_argument(
        "--urlwatch", action="store_true", help="also run urlwatch on the same scenarios (urlwatch_bench.py)"
    )
    parser.add_argument(
        "--urlwatch-server",
        choices=("before", "exact", "both"),
        default="both",
        help="nginx's If-Modified-Since setting for urlwatch's runs (default: both, one after the other)",
    )
    parser.add_argument(
        "--latency", type=float, metavar="MS", help="only warm cycles, every answer MS milliseconds late"
    )
    parser.add_argument(
        "--database", metavar="URL", help="a PostgreSQL URL: a new database per run on that server"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        help=f"requests in flight, all to the one host (default {CONCURRENCY}, the monitor's default)",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency takes at least 1")
    if args.latency is not None and (args.latency <= 0 or args.urlwatch):
        parser.error("--latency takes a positive number of milliseconds, and not --urlwatch")
    where = "PostgreSQL" if args.database else "SQLite"
    if args.latency is not None:
        print(
            f"median of {args.runs} warm cycles after a cold one; {args.concurrency} requests in flight, "
            f"all to one host, answered {args.latency:g} ms late; {where}"
        )
        print(HEADER)
        for n in args.n or [1000]:
            _latency_rows(n, args.runs, args.latency, args.database, args.concurrency)
        return
    print(f"median of {args.runs} runs; {args.concurrency} requests in flight, all to one host; {where}")
    print(HEADER)
    for n in args.n or [1000, 10000]:
        measured = run(n, args.runs, args.database, args.concurrency)
        ours = {scenario: median(figures) for scenario, figures in measured.items()}
        _rows(n, "", ours)
        if args.urlwatch:
            _urlwatch_rows(n, args.runs, ours, args.urlwatch_server)


def _urlwatch_rows(n: int, runs: int, ours: dict[str, Figures], servers: str) -> None:
    """urlwatch on the same pages, with nginx answering If-Modified-Since as ``before`` (304 to
    a later date: urlwatch's best case) and/or ``exact`` (nginx's default, where urlwatch's own
    last-check time never matches), then the ratios to ours. The monitor sends the server's own
    validators, so its figures are the same under either setting."""
    import urlwatch_bench

    settings: tuple[Conditional, ...] = (
        ("before", "exact") if servers == "both" else (cast(Conditional, servers),)
    )
    for conditional in settings:
        theirs = {s: median(f) for s, f in urlwatch_bench.run(n, runs, conditional).items()}
        label = "uw-" + conditional[:2] + " "
        _rows(n, label, theirs)
        for scenario, mine in ours.items():
            other = theirs[scenario]
            print(
                f"{n:>6} {scenario:>10} urlwatch ({conditional})/ours: wall {other.wall / mine.wall:.2f}x, "
                f"cpu {other.cpu / mine.cpu:.2f}x, rss {other.rss_mb / mine.rss_mb:.2f}x"
            )


def _latency_rows(n: int, runs: int, latency_ms: float, database: str | None, concurrency: int) -> None:
    """The latency scenario at ``n``: the cold row, the warm median, what nginx saw."""
    label = f"+{latency_ms:g}ms"
    cold, warm, seen = run_latency(n, runs, latency_ms / 1000, database, concurrency)
    _rows(n, "", {f"cold{label}": cold, f"warm{label}": median(warm)})
    walls = " / ".join(f"{f.wall:.1f}" for f in warm)
    for figures, nginx_saw in zip(warm, seen, strict=True):
        print(
            f"{'':>17} wall {figures.wall:.1f} s: nginx answered {nginx_saw.requests} requests on "
            f"{nginx_saw.connections} connections, in {nginx_saw.fastest * 1000:.0f} ms or more "
            f"(median {nginx_saw.median * 1000:.0f} ms)"
        )
    floor = math.ceil(n / concurrency) * latency_ms / 1000
    print(f"{'':>17} waiting alone: at least {floor:.1f} s ({n} requests, {concurrency} at a time)")
    if n == 1000 and latency_ms == 50 and concurrency == CONCURRENCY:
        met = "met" if median(warm).wall < TARGET_LATENCY_WALL else "not met"
        print(f"target: warm 1,000 at 50 ms under {TARGET_LATENCY_WALL:g} s: {met} (walls {walls} s)")


def _rows(n: int, label: str, figures: dict[str, Figures]) -> None:
    """One table row per scenario."""
    for scenario, m in figures.items():
        print(
            f"{n:>6} {label + scenario:>10} {m.wall:7.1f} {m.cpu:7.1f} {m.rss_mb:7.0f} {m.ok:6.0f} "
            f"{m.not_modified:6.0f} {m.snapshots:6.0f} {m.changes:7.0f} {m.db_growth_kb:8.0f}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_cycle":
        _cycle(sys.argv[2])
    else:
        main()
