"""urlwatch on the fleet benchmark's advisory pages, served by nginx: cold, warm, warm with changes.

    python benchmarks/urlwatch_bench.py                        # N = 1,000 and 10,000, 3 runs each
    python benchmarks/urlwatch_bench.py --n 200 --runs 1 --conditional before

The same pages and scenarios as ``fleet.py``, watched by urlwatch (https://thp.io/2008/urlwatch/)
instead of the monitor, for a comparison: one urlwatch job per page, as urlwatch users write them
(a ``css`` filter keeping ``main article``, then ``html2text``), and each cycle is one
``urlwatch`` run in a child process.

* cold: an empty cache, every page fetched, filtered and stored (reported NEW);
* warm: nothing changed since the last cycle;
* changed: 10 % of the advisories changed since the last cycle (reported CHANGED).

The figures are those of ``fleet.py``: wall seconds, CPU seconds (user + sys) and peak RSS of the
urlwatch process, the requests nginx answered 200 and 304, the jobs reported NEW or CHANGED
("snaps", what urlwatch stores) and CHANGED ("changes"), and the growth of urlwatch's cache file;
medians over ``--runs`` runs (a run is cold, then warm, then changed, each from the state the
previous one left).

urlwatch is installed from PyPI into a virtual environment of its own, outside the repository
(``~/.cache/advisory-monitor-bench/urlwatch-venv`` by default; ``--venv`` to choose), and reused
afterwards. Its ``html2text`` filter converts with its default method, ``re`` (a regular
expression that strips the tags), which needs no package beyond urlwatch's own dependencies.

``--conditional`` sets nginx's ``if_modified_since``. On its second run urlwatch sends the ETag it
stored as If-None-Match, and as If-Modified-Since the time of its own last check rather than the
page's Last-Modified. nginx's default, ``exact``, answers 304 only when If-Modified-Since equals the
file's modification time, so urlwatch gets every page in full again; ``before`` answers 304 when
the file is not newer than that time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_args

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fixtures import generate, mutate
from fleet import Figures, figures_of, median, run_child
from nginx import Conditional, Nginx

DEFAULT_VENV = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "advisory-monitor-bench"
    / "urlwatch-venv"
)
# urlwatch from PyPI, latest release. Its css filter needs lxml and cssselect, both dependencies of
# urlwatch; the html2text filter's default method ("re") needs nothing more.
REQUIREMENTS = ("urlwatch",)
SELECTOR = "main article"
# Reporters that send something somewhere; urlwatch enables none of them by default, and the
# configuration disables them again so that a run never leaves the machine.
SENDING_REPORTERS = (
    "email",
    "ifttt",
    "webservice",
    "pushover",
    "pushbullet",
    "mailgun",
    "telegram",
    "slack",
    "mattermost",
    "discord",
    "matrix",
    "xmpp",
    "prowl",
    "shell",
    "gotify",
)
# A summary line of urlwatch's text report: "01. NEW: country-0001".
SUMMARY_LINE = re.compile(r"^\d{2,}\. (NEW|CHANGED|UNCHANGED|ERROR): ", re.MULTILINE)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@dataclass(frozen=True)
class UrlwatchPaths:
    """The files of one urlwatch setup, all in one folder.

    ``hooks`` names a file that does not exist, so that no hooks file of the user's is loaded.
    """

    urls: Path
    config: Path
    cache: Path
    hooks: Path

    def arguments(self) -> list[str]:
        """The command-line options that point urlwatch at these files."""
        return [
            "--urls",
            str(self.urls),
            "--config",
            str(self.config),
            "--cache",
            str(self.cache),
            "--hooks",
            str(self.hooks),
        ]


def ensure_urlwatch(venv: Path = DEFAULT_VENV) -> Path:
    """The ``urlwatch`` executable of the virtual environment ``venv``, created first when missing.

    The environment is made with ``python3 -m venv`` (the running interpreter) and urlwatch is
    installed into it with pip from PyPI; an environment that already holds urlwatch is reused as
    it is. RuntimeError when the environment or the installation fails.
    """
    venv = Path(venv).expanduser()
    executable = venv / "bin" / "urlwatch"
    if executable.is_file() and os.access(executable, os.X_OK):
        return executable
    python = venv / "bin" / "python"
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS])
    if not executable.is_file():
        raise RuntimeError(f"pip installed {', '.join(REQUIREMENTS)}, but {executable} does not exist")
    return executable


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout)[-2000:]
        raise RuntimeError(f"{' '.join(command)} failed with status {result.returncode}:\n{tail}")


def urlwatch_version(executable: Path) -> str:
    """What ``urlwatch --version`` prints, e.g. ``urlwatch 2.29``."""
    result = subprocess.run([str(executable), "--version"], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def write_jobs(folder: Path, base_url: str, slugs: list[str]) -> UrlwatchPaths:
    """Write urlwatch's job list and configuration into ``folder`` and name its cache file there.

    One job per page (a YAML document each, separated by ``---``): its slug as the name, the
    page's URL, and the filters ``css: main article`` then ``html2text``. The configuration only
    enables the stdout reporter, without colours, showing new and changed jobs and errors.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = UrlwatchPaths(
        urls=folder / "urls.yaml",
        config=folder / "urlwatch.yaml",
        cache=folder / "cache.db",
        hooks=folder / "hooks.py",
    )
    jobs = [
        {
            "name": slug,
            "url": f"{base_url}/advice/{slug}.html",
            "filter": [{"css": SELECTOR}, "html2text"],
        }
        for slug in slugs
    ]
    paths.urls.write_text(yaml.safe_dump_all(jobs, sort_keys=False), encoding="utf-8")
    reporters: dict[str, Any] = {
        "text": {"details": True, "footer": True, "minimal": False},
        "stdout": {"enabled": True, "color": False},
    }
    reporters.update({name: {"enabled": False} for name in SENDING_REPORTERS})
    config = {
        "display": {"new": True, "error": True, "unchanged": False, "empty-diff": True},
        "report": reporters,
    }
    paths.config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return paths


def report_counts(output: str) -> Counter[str]:
    """How many jobs urlwatch's stdout report lists per verb (NEW, CHANGED, ERROR...)."""
    return Counter(SUMMARY_LINE.findall(output))


def _cache_size(cache: Path) -> int:
    """The cache database's size in bytes, with its journal or write-ahead log when there is one."""
    files = (cache, cache.with_name(cache.name + "-journal"), cache.with_name(cache.name + "-wal"))
    return sum(path.stat().st_size for path in files if path.exists())


def _child_environment() -> dict[str, str]:
    """The environment without proxies: urlwatch passes HTTP(S)_PROXY to every request."""
    environment = {key: value for key, value in os.environ.items() if key not in PROXY_VARIABLES}
    environment["NO_PROXY"] = environment["no_proxy"] = "127.0.0.1,localhost"
    return environment


def cycle(urlwatch: Path, paths: UrlwatchPaths, nginx: Nginx) -> Figures:
    """One urlwatch run in its own process; figures from the kernel (rusage), nginx's log and the
    report urlwatch prints.

    ``snapshots`` counts the jobs reported NEW or CHANGED (urlwatch stores a new version of those
    only) and ``changes`` those reported CHANGED. Jobs reported as errors are counted on stderr.
    """
    before_statuses, before_size = nginx.statuses(), _cache_size(paths.cache)
    child = run_child([str(urlwatch), *paths.arguments()], env=_child_environment())
    counts = report_counts(child.output)
    if counts["ERROR"]:
        print(f"urlwatch reported {counts['ERROR']} jobs as errors", file=sys.stderr)
    return figures_of(
        child,
        nginx,
        before_statuses,
        snapshots=counts["NEW"] + counts["CHANGED"],
        changes=counts["CHANGED"],
        growth=_cache_size(paths.cache) - before_size,
    )


def run(
    n: int, runs: int, conditional: Conditional = "exact", venv: Path = DEFAULT_VENV
) -> dict[str, list[Figures]]:
    """Cold, warm and changed cycles of urlwatch on ``n`` pages, ``runs`` times, with nginx's
    ``if_modified_since`` set to ``conditional``; each run starts from an empty cache.

    urlwatch's If-Modified-Since is the time of its own last check, to the second, and nginx's
    ``exact`` answers 304 when that equals a page's modification time. So that this happens no more
    than with pages written long before they are watched, more than a second passes between the
    last write to the pages (generated, or changed) and the next cycle.
    """
    executable = ensure_urlwatch(venv)
    results: dict[str, list[Figures]] = {"cold": [], "warm": [], "changed": []}
    with tempfile.TemporaryDirectory(prefix="urlwatch-bench-") as tmp:
        folder = Path(tmp)
        fixtures = generate(folder / "site", n)
        slugs = list(fixtures.slugs)
        with Nginx(fixtures.root, log=True, conditional=conditional) as nginx:
            for index in range(runs):
                paths = write_jobs(folder / f"run{index}", nginx.url, slugs)
                time.sleep(1.1)
                results["cold"].append(cycle(executable, paths, nginx))
                results["warm"].append(cycle(executable, paths, nginx))
                time.sleep(1.1)
                mutate(fixtures, 0.1, seed=index + 1)
                results["changed"].append(cycle(executable, paths, nginx))
    return results


def main(argv: list[str] | None = None) -> None:
    """Print the medians per N and scenario, in the table format of ``fleet.py``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="pages (repeatable; default 1000 and 10000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--conditional",
        choices=get_args(Conditional),
        default="exact",
        help="nginx's if_modified_since (default exact, nginx's own default)",
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"default {DEFAULT_VENV}")
    args = parser.parse_args(argv)
    conditional = cast(Conditional, args.conditional)
    version = urlwatch_version(ensure_urlwatch(args.venv))
    header = (
        f"{'N':>6} {'scenario':>8} {'wall s':>7} {'cpu s':>7} {'rss MB':>7} {'200':>6} {'304':>6} "
        f"{'snaps':>6} {'changes':>7} {'db +KB':>8}"
    )
    print(f"median of {args.runs} runs; {version}, nginx if_modified_since {conditional}, all to one host")
    print(header)
    for n in args.n or [1000, 10000]:
        for scenario, figures in run(n, args.runs, conditional, args.venv).items():
            m = median(figures)
            print(
                f"{n:>6} {scenario:>8} {m.wall:7.1f} {m.cpu:7.1f} {m.rss_mb:7.0f} {m.ok:6.0f} "
                f"{m.not_modified:6.0f} {m.snapshots:6.0f} {m.changes:7.0f} {m.db_growth_kb:8.0f}"
            )


if __name__ == "__main__":
    main()
