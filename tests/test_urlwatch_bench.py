"""Smoke test of benchmarks/urlwatch_bench.py: urlwatch on 20 advisory pages served by nginx.

It runs in CI (``CI=true``) and with ``MONITOR_BENCH_URLWATCH=1``; elsewhere it is skipped: the
benchmark installs urlwatch from PyPI into a virtual environment of its own (under
``~/.cache``), which a developer's offline run cannot do. It also needs nginx (see
test_bench_harness.py).
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

import pytest

from tests.support.benchmarks import load

N = 20

pytestmark = pytest.mark.skipif(
    os.environ.get("MONITOR_BENCH_URLWATCH") != "1" and os.environ.get("CI", "").lower() != "true",
    reason=(
        "installs urlwatch from PyPI into a virtual environment of its own; it runs in CI, or "
        "set MONITOR_BENCH_URLWATCH=1 to run it here"
    ),
)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark module, once nginx is known to be there (installed when running as root)."""
    module = load("bench_urlwatch", "urlwatch_bench.py")
    in_ci = os.environ.get("CI", "").lower() == "true"
    try:
        sys.modules[module.Nginx.__module__].ensure_nginx()
    except RuntimeError as exc:
        if in_ci:
            pytest.fail(f"CI=true but nginx is unavailable: {exc}")
        pytest.skip(f"nginx is unavailable: {exc}")
    return module


def test_urlwatch_reports_every_page_new_then_nothing_then_the_changed_ones(bench: ModuleType) -> None:
    """Cold: every job NEW; warm: no change, every page fetched in full again (nginx's default
    ``if_modified_since exact`` never equals urlwatch's own check time); changed: the 10 % of
    pages that changed, and nothing else."""
    results = bench.run(N, 1, "exact")
    cold, warm, changed = results["cold"][0], results["warm"][0], results["changed"][0]
    assert (cold.snapshots, cold.changes, cold.ok, cold.not_modified) == (N, 0, N, 0)
    assert cold.db_growth_kb > 0
    assert (warm.snapshots, warm.changes, warm.ok, warm.not_modified) == (0, 0, N, 0)
    assert (changed.snapshots, changed.changes, changed.ok, changed.not_modified) == (2, 2, N, 0)


def test_with_if_modified_since_before_unchanged_pages_get_304(bench: ModuleType) -> None:
    """Under ``before``, urlwatch's If-Modified-Since (its last check time) is not older than the
    pages, so only the changed ones are sent again."""
    results = bench.run(N, 1, "before")
    warm, changed = results["warm"][0], results["changed"][0]
    assert (warm.changes, warm.ok, warm.not_modified) == (0, 0, N)
    assert (changed.snapshots, changed.changes, changed.ok, changed.not_modified) == (2, 2, 2, N - 2)


def test_the_report_is_counted_per_verb(bench: ModuleType) -> None:
    """The summary lines of urlwatch's text report, not the detail headers below them."""
    output = (
        "=====\n01. NEW: a\n02. CHANGED: b\n100. ERROR: c\n=====\n\n"
        "-----\nCHANGED: b ( http://127.0.0.1/b )\n-----\n-01. NEW: not a summary line\n"
    )
    counts = bench.report_counts(output)
    assert (counts["NEW"], counts["CHANGED"], counts["ERROR"]) == (1, 1, 1)
