"""The service left running on N sources: memory and CPU per cycle over many cycles.

    python benchmarks/soak.py                          # 1,000 sources, 50 warm cycles, interval 20 s
    python benchmarks/soak.py --n 1000 --cycles 5      # a short one
    python benchmarks/soak.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test

One real ``monitor run`` process (``python -m monitor --config CFG run --http 127.0.0.1:PORT``)
watches N advisory pages served by nginx on 127.0.0.1 (``bench_fixtures.py``, ``nginx.py``), with
the configuration of ``fleet.py`` but an interval of ``--interval`` seconds, so that one cycle
follows another: the service spreads its first checks over up to 5 s, then checks each source
again an interval after its last check, plus up to a tenth of the interval (at most 30 s) of
jitter. Nothing changes on the pages: after the first (cold) cycle every check is a 304.

A cycle ends when N more checks have been recorded in the database's ``checks`` table (counted
from this process every 0.2 s). At the end of each cycle: the service's resident memory
(``VmRSS`` in ``/proc/PID/status``), its CPU seconds in the cycle (``utime + stime`` of
``/proc/PID/stat``, all its threads), the database's size. The table shows the cold cycle, warm
cycle 1, every 5th warm cycle (``--every``) and the last; then the summary: RSS at warm cycles 1,
10 and the last, the largest, the slope of RSS over warm cycles 10 to the last by least squares
(MB per cycle), CPU per warm cycle (median, and its slope). Then the service is stopped with
SIGTERM, as systemd would, and must exit 0.

Each run has a new database: a SQLite file in a temporary folder, or with ``--database`` a new
database on that PostgreSQL server, dropped afterwards (``scratchdb.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fixtures import generate
from fleet import CONCURRENCY, write_config
from nginx import Nginx, local_get, pick_port
from scratchdb import database_size, scratch_database

POLL = 0.2  # seconds between two counts of the checks
STOP_TIMEOUT = 60.0  # seconds the service may take to exit after SIGTERM (its grace is 5 s)
START_TIMEOUT = 60.0  # seconds until /healthz answers 200
SHOWN_EVERY = 5  # table rows: the cold cycle, every 5th warm cycle and the last
FLAT_GROWTH_MB = 2.0  # "flat": the fitted line rises less than this over the cycles it covers
SLOPE_FROM = 10  # the slope is fitted from this warm cycle on (earlier ones fill caches)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """The service at the end of one cycle (cycle 0 is the cold one)."""

    cycle: int
    wall: float  # seconds since the end of the previous cycle (since the process started, for cycle 0)
    checks: int  # checks recorded in this cycle
    rss_mb: float
    cpu: float  # CPU seconds of the service in this cycle (for cycle 0, since it started)
    db_mb: float


@dataclass(frozen=True)
class Soak:
    """A whole run: the samples, nginx's answers in the warm cycles, the checks by outcome, the
    service's exit code and how long it took to stop, its peak RSS and its warnings."""

    n: int
    interval: float
    samples: list[Sample]
    warm_statuses: Counter[int]
    outcomes: Counter[str]
    exit_code: int
    stop_seconds: float
    peak_rss_mb: float
    warnings: list[str]

    @property
    def warm(self) -> list[Sample]:
        """The samples of the warm cycles (1 and on)."""
        return [sample for sample in self.samples if sample.cycle > 0]


# --- the service process ------------------------------------------------------------------------


def status_mb(pid: int, field: str) -> float:
    """A memory figure of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), in MB."""
    text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    match = re.search(rf"^{field}:\s+(\d+) kB$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {field} in /proc/{pid}/status")
    return int(match.group(1)) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process so far, all its threads (``/proc/PID/stat``)."""
    text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ", from the state field on
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def monitor_command(config: Path, http_port: int) -> list[str]:
    """``monitor --config CFG run --http 127.0.0.1:PORT``, with this interpreter."""
    return [
        sys.executable,
        "-m",
        "monitor",
        "--config",
        str(config),
        "run",
        "--http",
        f"127.0.0.1:{http_port}",
    ]


def healthz(port: int) -> int | None:
    """The status ``/healthz`` answers on 127.0.0.1:``port`` (no proxy), None when nothing answers."""
    response = local_get(port, "/healthz", 2.0)
    return None if response is None else response.status


def wait_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Return once the service's ``/healthz`` answers 200; RuntimeError if it exits or times out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with code {process.returncode}:\n{tail(log)}")
        if healthz(port) == 200:
            return
        time.sleep(POLL)
    raise RuntimeError(f"the service's /healthz did not answer 200 within {START_TIMEOUT:g} s:\n{tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """SIGTERM, then wait for the exit; returns the exit code and the seconds it took. A service
    still running after STOP_TIMEOUT is killed (exit code -9)."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    return code, time.monotonic() - started


def tail(log: Path, chars: int = 3000) -> str:
    """The end of the service's log."""
    if not log.exists():
        return ""
    return log.read_text(encoding="utf-8", errors="replace")[-chars:]


def warnings_of(log: Path) -> list[str]:
    """The service's log lines at WARNING or worse."""
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)]


# --- the database -------------------------------------------------------------------------------


def count_checks(engine: sa.Engine) -> int:
    """The rows of the ``checks`` table; 0 while the service has not created it yet."""
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM checks")).scalar_one())
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return 0


def outcomes(engine: sa.Engine) -> Counter[str]:
    """The checks by outcome (``not_modified``, ``unchanged``, ``failed``...)."""
    query = sa.text("SELECT outcome, count(*) FROM checks GROUP BY outcome")
    with engine.connect() as connection:
        return Counter({str(outcome): int(count) for outcome, count in connection.execute(query)})


# --- the run ------------------------------------------------------------------------------------


def cycle_timeout(n: int, interval: float) -> float:
    """How long one cycle may take before the run is given up: three intervals, and time for
    ``n`` cold checks (a few per second would already be very slow)."""
    return 3 * interval + n / 5 + 60


def watch_cycles(
    process: subprocess.Popen[bytes],
    engine: sa.Engine,
    *,
    url: str,
    n: int,
    cycles: int,
    timeout: float,
    log: Path,
    on_sample: Callable[[Sample], None],
    started: float,
) -> list[Sample]:
    """Sample the service at the end of the cold cycle and of ``cycles`` warm ones; the cold
    cycle counts from ``started`` (the process's start: its imports and start-up included)."""
    samples: list[Sample] = []
    last_end = started
    last_cpu, last_count = 0.0, 0
    for index in range(cycles + 1):
        target = n * (index + 1)
        deadline = time.monotonic() + timeout
        count = count_checks(engine)
        while count < target:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with code {process.returncode}:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"cycle {index}: {count - last_count} of {n} checks after {timeout:.0f} s:\n{tail(log)}"
                )
            time.sleep(POLL)
            count = count_checks(engine)
        now, cpu = time.monotonic(), cpu_seconds(process.pid)
        sample = Sample(
            cycle=index,
            wall=now - (started if index == 0 else last_end),
            checks=count - last_count,
            rss_mb=status_mb(process.pid, "VmRSS"),
            cpu=cpu - last_cpu,
            db_mb=database_size(url) / 1e6,
        )
        samples.append(sample)
        on_sample(sample)
        last_end, last_cpu, last_count = now, cpu, count
    return samples


@contextlib.contextmanager
def service(config: Path, folder: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, float]]:
    """``monitor run`` started on ``config``, its log in ``folder/service.log``; yields once its
    /healthz answers 200: the process, the log and when it was started (``time.monotonic()``).
    A service still running when the block ends by an error is killed."""
    log = folder / "service.log"
    port = pick_port()
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            monitor_command(config, port),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    try:
        wait_healthy(process, port, log)
        yield process, log, started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run(
    n: int,
    cycles: int,
    interval: float,
    database: str | None = None,
    on_sample: Callable[[Sample], None] = lambda _sample: None,
) -> Soak:
    """The soak: ``monitor run`` on ``n`` pages for a cold cycle and ``cycles`` warm ones, then
    SIGTERM. ``on_sample`` sees each cycle's sample as it ends."""
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        folder = Path(tmp)
        fixtures = generate(folder / "site", n)
        slugs = list(fixtures.slugs)
        with (
            Nginx(fixtures.root, log=True, conditional="before") as nginx,
            scratch_database(database, folder, "soak") as url,
        ):
            config = write_config(folder, nginx.url, slugs, url, interval=f"{interval:g}s")
            engine = sa.create_engine(url)
            try:
                with service(config, folder) as (process, log, started):
                    timeout = cycle_timeout(n, interval)
                    cold_statuses: Counter[int] = Counter()

                    def sampled(sample: Sample) -> None:
                        if sample.cycle == 0:
                            cold_statuses.update(nginx.statuses())
                        on_sample(sample)

                    samples = watch_cycles(
                        process,
                        engine,
                        url=url,
                        n=n,
                        cycles=cycles,
                        timeout=timeout,
                        log=log,
                        on_sample=sampled,
                        started=started,
                    )
                    peak = status_mb(process.pid, "VmHWM")
                    exit_code, took = stop(process)
                by_outcome = outcomes(engine)
            finally:
                engine.dispose()
            time.sleep(0.2)  # nginx logs a request after answering it
            warm_statuses = nginx.statuses() - cold_statuses
        return Soak(
            n=n,
            interval=interval,
            samples=samples,
            warm_statuses=warm_statuses,
            outcomes=by_outcome,
            exit_code=exit_code,
            stop_seconds=took,
            peak_rss_mb=peak,
            warnings=warnings_of(log),
        )


# --- figures ------------------------------------------------------------------------------------


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of y over x; 0 with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return 0.0
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / spread


def rss_at(soak: Soak, cycle: int) -> float | None:
    """The RSS at the end of warm cycle ``cycle``, None when the run was shorter."""
    return next((s.rss_mb for s in soak.warm if s.cycle == cycle), None)


HEADER = f"{'cycle':>6} {'wall s':>7} {'checks':>7} {'rss MB':>7} {'cpu s':>6} {'db MB':>7}"


def row(sample: Sample) -> str:
    """One table row."""
    name = "cold" if sample.cycle == 0 else str(sample.cycle)
    return (
        f"{name:>6} {sample.wall:7.1f} {sample.checks:7d} {sample.rss_mb:7.1f} {sample.cpu:6.2f} "
        f"{sample.db_mb:7.1f}"
    )


def shown(sample: Sample, cycles: int, every: int = SHOWN_EVERY) -> bool:
    """Whether the table shows this cycle: the cold one, warm 1, every ``every``-th, the last."""
    return sample.cycle in (0, 1, cycles) or sample.cycle % every == 0


def summary(soak: Soak) -> list[str]:
    """The summary lines under the table."""
    warm = soak.warm
    if not warm:
        return ["no warm cycle"]
    last = warm[-1].cycle
    start = SLOPE_FROM if last > SLOPE_FROM else 1
    fitted = [(float(s.cycle), s.rss_mb) for s in warm if s.cycle >= start]
    per_cycle = slope(fitted)
    growth = per_cycle * (last - start)
    marks = ", ".join(
        f"cycle {c}: {value:.1f} MB" for c in sorted({1, 10, last}) if (value := rss_at(soak, c)) is not None
    )
    statuses = ", ".join(f"{count} x {status}" for status, count in sorted(soak.warm_statuses.items()))
    kinds = ", ".join(f"{count} {outcome}" for outcome, count in soak.outcomes.most_common())
    cpus = [s.cpu for s in warm]
    cpu_slope = slope([(float(s.cycle), s.cpu) for s in warm if s.cycle >= start])
    walls = [s.wall for s in warm]
    flat = "yes" if abs(growth) < FLAT_GROWTH_MB else "no"
    return [
        f"RSS {marks}; largest {max(s.rss_mb for s in soak.samples):.1f} MB "
        f"(peak {soak.peak_rss_mb:.1f} MB, VmHWM)",
        f"RSS slope over warm cycles {start}-{last}: {per_cycle:+.3f} MB per cycle "
        f"({growth:+.1f} MB over those cycles); flat (under {FLAT_GROWTH_MB:g} MB): {flat}",
        f"CPU per warm cycle: median {statistics.median(cpus):.2f} s "
        f"(min {min(cpus):.2f}, max {max(cpus):.2f}; slope over cycles {start}-{last} "
        f"{cpu_slope:+.3f} s per cycle); cycle length median {statistics.median(walls):.1f} s",
        f"nginx in the warm cycles: {statuses or 'nothing'}; checks recorded: {kinds}",
        f"SIGTERM: exit code {soak.exit_code} after {soak.stop_seconds:.1f} s; "
        f"{len(soak.warnings)} warning or error lines in the service's log",
        *(f"  {line}" for line in soak.warnings[:5]),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print the table and summary; exit code 1 when the service did not exit 0."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="sources (default 1000)")
    parser.add_argument("--cycles", type=int, default=50, help="warm cycles after the cold one (default 50)")
    parser.add_argument("--interval", type=float, default=20.0, help="seconds between checks (default 20)")
    parser.add_argument(
        "--database", metavar="URL", help="a PostgreSQL URL: a new database on that server (default SQLite)"
    )
    parser.add_argument(
        "--every",
        type=int,
        default=SHOWN_EVERY,
        help=f"show every EVERY-th warm cycle (default {SHOWN_EVERY})",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.cycles < 1 or args.interval <= 0 or args.every < 1:
        parser.error("--n, --cycles and --every take at least 1, --interval a positive number of seconds")
    where = "PostgreSQL" if args.database else "SQLite"
    print(
        f"monitor run on {args.n} sources, interval {args.interval:g} s, {CONCURRENCY} requests in "
        f"flight; {where}; a cold cycle, then {args.cycles} warm ones"
    )
    print(HEADER, flush=True)

    def show(sample: Sample) -> None:
        if shown(sample, args.cycles, args.every):
            print(row(sample), flush=True)

    soak = run(args.n, args.cycles, args.interval, args.database, show)
    for line in summary(soak):
        print(line)
    return 0 if soak.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
