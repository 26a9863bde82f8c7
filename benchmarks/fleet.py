"""The monitor on N advisory pages served by a real nginx on 127.0.0.1: cold, warm, warm with changes.

    python benchmarks/fleet.py                       # N = 1,000 and 10,000, 3 runs each
    python benchmarks/fleet.py --n 1000 --runs 1

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
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fixtures import generate, mutate
from nginx import Nginx

CONCURRENCY = 16


@dataclass(frozen=True)
class Figures:
    wall: float
    cpu: float
    rss_mb: float
    ok: int
    not_modified: int
    snapshots: int
    changes: int
    db_growth_kb: float


def write_config(folder: Path, base_url: str, slugs: list[str], database: str) -> Path:
    lines = [
        f"database: {database}",
        "defaults:",
        "  interval: 1s",
        f"  concurrency: {CONCURRENCY}",
        f"  per_host: {CONCURRENCY}",
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


def _database_size(database: str) -> int:
    path = Path(database.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


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
    before_statuses, before_size = nginx.statuses(), _database_size(database)
    child = run_child([sys.executable, __file__, "_cycle", str(config)])
    counts = json.loads(child.output)
    return figures_of(
        child,
        nginx,
        before_statuses,
        snapshots=counts["snapshots"],
        changes=counts["changes"],
        growth=_database_size(database) - before_size,
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
    from monitor.service.runner import run_once
    from monitor.store import Store

    config = config_module.load(Path(config_path))
    store = Store.open(config.database)
    store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), _now())
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


def run(n: int, runs: int) -> dict[str, list[Figures]]:
    results: dict[str, list[Figures]] = {"cold": [], "warm": [], "changed": []}
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        folder = Path(tmp)
        fixtures = generate(folder / "site", n)
        slugs = [page.stem for page in fixtures.pages]
        # "before": a 304 to an If-Modified-Since at or after the file's time (see nginx.py); the
        # monitor sends the server's own validators, so it gets 304s under either setting.
        with Nginx(fixtures.root, log=True, conditional="before") as nginx:
            for index in range(runs):
                database = f"sqlite:///{folder / f'run{index}.db'}"
                config = write_config(folder, nginx.url, slugs, database)
                results["cold"].append(cycle(config, nginx, database))
                time.sleep(1.1)  # every source due again (interval 1 s)
                results["warm"].append(cycle(config, nginx, database))
                mutate(fixtures, 0.1, seed=index + 1)
                time.sleep(1.1)
                results["changed"].append(cycle(config, nginx, database))
    return results


def median(figures: list[Figures]) -> Figures:
    fields = Figures.__dataclass_fields__
    return Figures(**{name: statistics.median(getattr(f, name) for f in figures) for name in fields})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="sources (repeatable; default 1000 and 10000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--urlwatch", action="store_true", help="also run urlwatch on the same scenarios (urlwatch_bench.py)"
    )
    args = parser.parse_args(argv)
    header = (
        f"{'N':>6} {'scenario':>8} {'wall s':>7} {'cpu s':>7} {'rss MB':>7} {'200':>6} {'304':>6} "
        f"{'snaps':>6} {'changes':>7} {'db +KB':>8}"
    )
    print(f"median of {args.runs} runs; {CONCURRENCY} requests in flight, all to one host")
    print(header)
    for n in args.n or [1000, 10000]:
        ours = {scenario: median(figures) for scenario, figures in run(n, args.runs).items()}
        _rows(n, "", ours)
        if args.urlwatch:
            import urlwatch_bench

            theirs = {s: median(f) for s, f in urlwatch_bench.run(n, args.runs, "before").items()}
            _rows(n, "urlwatch ", theirs)
            for scenario, mine in ours.items():
                other = theirs[scenario]
                print(
                    f"{n:>6} {scenario:>8} urlwatch/ours: wall {other.wall / mine.wall:.2f}x, "
                    f"cpu {other.cpu / mine.cpu:.2f}x, rss {other.rss_mb / mine.rss_mb:.2f}x"
                )


def _rows(n: int, label: str, figures: dict[str, Figures]) -> None:
    for scenario, m in figures.items():
        print(
            f"{n:>6} {label + scenario:>8} {m.wall:7.1f} {m.cpu:7.1f} {m.rss_mb:7.0f} {m.ok:6.0f} "
            f"{m.not_modified:6.0f} {m.snapshots:6.0f} {m.changes:7.0f} {m.db_growth_kb:8.0f}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_cycle":
        _cycle(sys.argv[2])
    else:
        main()
