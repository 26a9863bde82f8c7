"""Smoke test of the load-benchmark harness: benchmarks/bench_fixtures.py, nginx.py, fleet.py
(with its latency scenario and PostgreSQL) and soak.py.

The nginx tests need Debian's nginx, and the latency tests its echo module
(``libnginx-mod-http-echo``); the harness installs both when running as root. When they are
missing and cannot be installed the tests are skipped, except when ``CI=true``: then they fail.
The PostgreSQL test uses ``MONITOR_TEST_POSTGRES``, like the store's (see conftest.py).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import math
import os
import re
import socket
import time
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import _postgres_url
from tests.support.benchmarks import load

N = 100
DELAY = 0.05
# nginx's $request_time mixes two clocks (the request's start from the cached wall time, its end
# from the monotonic one), so a 50 ms sleep may be logged as 49 ms.
LOGGED_DELAY = DELAY - 0.001


fixtures_mod = load("bench_fixtures", "bench_fixtures.py")
nginx_mod = load("bench_nginx", "nginx.py")


def _required(ensure: Callable[[], Path], what: str) -> Path:
    """What ``ensure`` installs or finds; the test skips without it, and fails with CI=true."""
    try:
        return Path(ensure())
    except RuntimeError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {what} is unavailable: {exc}")
        pytest.skip(f"{what} is unavailable: {exc}")


def _nginx_binary() -> Path:
    return _required(nginx_mod.ensure_nginx, "nginx")


def _echo_module() -> Path:
    return _required(nginx_mod.ensure_echo_module, "nginx's echo module")


def test_ensure_nginx_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nginx_mod, "find_nginx", lambda: None)
    monkeypatch.setattr(nginx_mod.os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match="apt-get install -y nginx"):
        nginx_mod.ensure_nginx()


def test_ensure_echo_module_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nginx_mod, "ensure_nginx", lambda: Path("/usr/sbin/nginx"))
    monkeypatch.setattr(nginx_mod, "find_echo_module", lambda: None)
    monkeypatch.setattr(nginx_mod.os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match="apt-get install -y libnginx-mod-http-echo"):
        nginx_mod.ensure_echo_module()


def test_a_delay_needs_the_echo_module(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="echo module"):
        nginx_mod.render_config(
            tmp_path, tmp_path, port=1, conditional="before", log=False, workers=1, delay=DELAY
        )
    config = nginx_mod.render_config(
        tmp_path,
        tmp_path,
        port=1,
        conditional="before",
        log=False,
        workers=1,
        delay=DELAY,
        echo_module=Path("/x/ngx_http_echo_module.so"),
    )
    assert config.startswith("# Written")
    assert 'load_module "/x/ngx_http_echo_module.so";' in config
    assert config.count("echo_sleep 0.050;") == 2
    assert "echo_sleep" not in nginx_mod.render_config(
        tmp_path, tmp_path, port=1, conditional="before", log=False, workers=1
    )


@pytest.fixture(scope="module")
def nginx_binary() -> Path:
    return _nginx_binary()


@pytest.fixture(scope="module")
def echo_module(nginx_binary: Path) -> Path:
    return _echo_module()


@pytest.fixture
def fixtures(tmp_path: Path) -> Any:
    return fixtures_mod.generate(tmp_path / "site", N, seed=1)


def _main(page: bytes) -> str:
    text = page.decode("utf-8")
    return text[text.index("<main") : text.index("</main>")]


def _without_dates(page: bytes) -> str:
    """The page with its date lines blanked, to tell a text change from a date change."""
    text = page.decode("utf-8")
    text = re.sub(r"Last updated: [^<]*", "", text)
    return re.sub(r'"dcterms.modified" content="[^"]*"', "", text)


# --- fixtures -----------------------------------------------------------------------------------


def test_generate_writes_pages_items_and_feed(fixtures: Any) -> None:
    pages = sorted((fixtures.root / "advice").glob("*.html"))
    assert pages == list(fixtures.pages) and len(pages) == N
    assert fixtures.slugs[0] == "country-001" and fixtures.slugs[-1] == "country-100"
    mains = set()
    for page in pages:
        data = page.read_bytes()
        assert 55_000 <= len(data) <= 65_000, (page.name, len(data))
        text = data.decode("utf-8")
        assert re.search(
            r"Level [1-4]: (Exercise normal precautions|Exercise increased caution|"
            r"Reconsider travel|Do not travel)<",
            text,
        )
        assert re.search(r"Last updated: \d{1,2} [A-Z][a-z]+ 2026<", text)
        assert f"<h1>{fixtures_mod.country_name(page.stem)} Travel Advisory</h1>" in text
        mains.add(_main(data))
    assert len(mains) == N

    assert len(fixtures.items) == N
    for item_path in fixtures.items:
        item = json.loads(item_path.read_text(encoding="utf-8"))
        assert {"base_path", "title", "description", "public_updated_at", "updated_at", "details"} <= set(
            item
        )
        details = item["details"]
        assert {"summary", "parts", "alert_status"} <= set(details)
        assert all({"title", "slug", "body"} <= set(part) for part in details["parts"])
        assert item["base_path"] == f"/foreign-travel-advice/{item_path.stem}"

    feed = feedparser.parse(fixtures.feed.read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert len(feed.entries) == 200
    assert all(re.match(r"Country \d{3} - Level [1-4]: ", entry.title) for entry in feed.entries)
    assert all(entry.published_parsed for entry in feed.entries)
    assert feed.entries[0].title == feed.entries[N].title  # items cycle over the slugs
    assert len({entry.id for entry in feed.entries}) == 200


def test_generate_is_deterministic(tmp_path: Path) -> None:
    first = fixtures_mod.generate(tmp_path / "a", 12, seed=7)
    second = fixtures_mod.generate(tmp_path / "b", 12, seed=7)
    other = fixtures_mod.generate(tmp_path / "c", 12, seed=8)
    for a, b, c in zip(first.pages, second.pages, other.pages, strict=True):
        assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert first.feed.read_bytes() == second.feed.read_bytes()


def test_mutate_changes_the_text_of_exactly_the_picked_pages(fixtures: Any) -> None:
    before = {page.stem: page.read_bytes() for page in fixtures.pages}
    feed_before = fixtures.feed.read_bytes()
    changed = fixtures_mod.mutate(fixtures, 0.1, seed=2)
    assert len(changed) == 10 and len(set(changed)) == 10
    after = {page.stem: page.read_bytes() for page in fixtures.pages}
    for slug, data in after.items():
        if slug in changed:
            assert _without_dates(data) != _without_dates(before[slug])
            assert 'class="advisory__event"' in data.decode("utf-8")
        else:
            assert data == before[slug]
    assert fixtures.feed.read_bytes() != feed_before  # with 100 pages, every one is in the feed

    again = fixtures_mod.mutate(fixtures.root, 0.1, seed=3)
    assert len(again) == 10
    for slug in again:
        assert (fixtures.root / "advice" / f"{slug}.html").read_bytes() != after[slug]


def test_command_line_generates_then_mutates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert fixtures_mod.main([str(out), "--n", "20"]) == 0
    assert len(list((out / "advice").glob("*.html"))) == 20
    assert fixtures_mod.main([str(out), "--n", "20", "--mutate", "0.25", "--seed", "4"]) == 0
    output = capsys.readouterr().out
    assert "generated 20 pages" in output and "changed 5 of 20 pages" in output


# --- nginx --------------------------------------------------------------------------------------


def _http_date(timestamp: float) -> str:
    return format_datetime(dt.datetime.fromtimestamp(int(timestamp), dt.UTC), usegmt=True)


def _statuses_settle(server: Any, expected: collections.Counter[int]) -> collections.Counter[int]:
    """The server's status counts, given a moment to log the last request (logged after the reply)."""
    deadline = time.monotonic() + 2.0
    counts: collections.Counter[int] = server.statuses()
    while counts != expected and time.monotonic() < deadline:
        time.sleep(0.01)
        counts = server.statuses()
    return counts


def test_nginx_serves_the_fixtures(fixtures: Any, nginx_binary: Path) -> None:
    page, slug = fixtures.pages[0], fixtures.slugs[0]
    with (
        nginx_mod.Nginx(fixtures.root, log=True, binary=nginx_binary) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert server.url == f"http://127.0.0.1:{server.port}"
        first = client.get(f"/advice/{slug}.html")
        assert first.status_code == 200 and first.content == page.read_bytes()
        assert first.headers["content-type"] == "text/html; charset=utf-8"
        etag, last_modified = first.headers["etag"], first.headers["last-modified"]
        assert last_modified == _http_date(page.stat().st_mtime)

        assert client.get(f"/advice/{slug}.html", headers={"If-None-Match": etag}).status_code == 304
        later = _http_date(page.stat().st_mtime + 60)
        assert client.get(f"/advice/{slug}.html", headers={"If-Modified-Since": later}).status_code == 304

        item = client.get(f"/api/content/foreign-travel-advice/{slug}")
        assert item.status_code == 200 and item.headers["content-type"] == "application/json"
        assert item.json()["details"]["country"]["slug"] == slug
        feed = client.get("/feed.xml")
        assert feed.status_code == 200 and feed.headers["content-type"] == "application/rss+xml"
        assert client.get("/advice/nowhere.html").status_code == 404

        # A mutated page gets a new ETag at once; an untouched one keeps its own.
        etags = {s: client.get(f"/advice/{s}.html").headers["etag"] for s in fixtures.slugs[:N]}
        changed = set(fixtures_mod.mutate(fixtures, 0.05, seed=5))
        for s, old in etags.items():
            status = client.get(f"/advice/{s}.html", headers={"If-None-Match": old}).status_code
            assert status == (200 if s in changed else 304), s

        expected = collections.Counter({200: 3 + N + len(changed), 304: 2 + N - len(changed), 404: 1})
        assert _statuses_settle(server, expected) == expected
        port = server.port
    assert server.statuses() == expected  # still readable once stopped
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


@pytest.mark.parametrize(("conditional", "later_status"), [("exact", 200), ("before", 304)])
def test_if_modified_since_modes(
    fixtures: Any, nginx_binary: Path, conditional: str, later_status: int
) -> None:
    page = fixtures.pages[1]
    path = f"/advice/{page.name}"
    mtime = page.stat().st_mtime
    with (
        nginx_mod.Nginx(fixtures.root, conditional=conditional, binary=nginx_binary) as server,
        httpx.Client(base_url=server.url) as client,
    ):

        def status(since: float) -> int:
            return client.get(path, headers={"If-Modified-Since": _http_date(since)}).status_code

        assert status(mtime) == 304
        assert status(mtime + 3600) == later_status
        assert status(mtime - 3600) == 200


def test_the_fleet_benchmark_detects_every_changed_page_and_nothing_else(nginx_binary: Path) -> None:
    """benchmarks/fleet.py at N = 100: cold fetches and stores everything, warm is all 304s and
    writes no snapshot, 10 % changed are exactly ten changes."""
    fleet = load("bench_fleet", "fleet.py")
    results = fleet.run(N, 1)
    [cold], [warm], [changed] = results["cold"], results["warm"], results["changed"]
    assert (cold.ok, cold.not_modified, cold.snapshots, cold.changes) == (N, 0, N, 0)
    assert (warm.ok, warm.not_modified, warm.snapshots, warm.changes) == (0, N, 0, 0)
    assert (changed.ok, changed.not_modified, changed.snapshots, changed.changes) == (10, 90, 10, 10)
    assert all(f.wall > 0 and f.cpu > 0 and f.rss_mb > 0 for f in (cold, warm, changed))


# --- latency --------------------------------------------------------------------------------------


def test_nginx_with_a_delay_answers_late_with_the_same_validators(fixtures: Any, echo_module: Path) -> None:
    """Every answer waits the delay, then is the static one: 200 with ETag and Last-Modified, 304
    to either validator, 404 for a missing file; all on one kept-alive connection."""
    page, slug = fixtures.pages[0], fixtures.slugs[0]
    with (
        nginx_mod.Nginx(fixtures.root, log=True, delay=DELAY) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        started = time.perf_counter()
        first = client.get(f"/advice/{slug}.html")
        assert time.perf_counter() - started >= DELAY
        assert first.status_code == 200 and first.content == page.read_bytes()
        assert first.headers["content-type"] == "text/html; charset=utf-8"
        etag, last_modified = first.headers["etag"], first.headers["last-modified"]
        assert last_modified == _http_date(page.stat().st_mtime)

        assert client.get(f"/advice/{slug}.html", headers={"If-None-Match": etag}).status_code == 304
        since = {"If-Modified-Since": last_modified}
        assert client.get(f"/advice/{slug}.html", headers=since).status_code == 304
        item = client.get(f"/api/content/foreign-travel-advice/{slug}")
        assert item.status_code == 200 and item.headers["content-type"] == "application/json"
        assert client.get("/advice/nowhere.html").status_code == 404
        took = time.perf_counter() - started

        expected = collections.Counter({200: 2, 304: 2, 404: 1})
        assert _statuses_settle(server, expected) == expected
        requests = server.requests()
    assert took >= 5 * DELAY
    assert all(request.seconds >= LOGGED_DELAY for request in requests), requests
    assert len({request.connection for request in requests}) == 1


def test_the_fleet_latency_scenario_waits_for_every_answer_and_gets_304s(echo_module: Path) -> None:
    """benchmarks/fleet.py --latency at N = 20: the warm cycle is all 304s, every request took
    the delay, on kept-alive connections, and the cycle cannot be shorter than the delay times
    the rounds of 16 requests in flight."""
    fleet = load("bench_fleet", "fleet.py")
    n = 20
    cold, [warm], [seen] = fleet.run_latency(n, 1, DELAY)
    assert (cold.ok, cold.not_modified, cold.snapshots) == (n, 0, n)
    assert (warm.ok, warm.not_modified, warm.snapshots, warm.changes) == (0, n, 0, 0)
    assert seen.requests == n and seen.fastest >= LOGGED_DELAY
    assert seen.connections <= fleet.CONCURRENCY
    assert warm.wall >= math.ceil(n / fleet.CONCURRENCY) * DELAY


# --- PostgreSQL -----------------------------------------------------------------------------------


def test_the_fleet_benchmark_on_postgresql_uses_a_new_database_per_run(nginx_binary: Path) -> None:
    """benchmarks/fleet.py --database at N = 20: the same answers as on SQLite, the database grows,
    and the scratch database is dropped afterwards."""
    base = _postgres_url()
    fleet = load("bench_fleet", "fleet.py")
    scratch = load("bench_scratchdb", "scratchdb.py")
    n = 20
    results = fleet.run(n, 1, base)
    [cold], [warm], [changed] = results["cold"], results["warm"], results["changed"]
    assert (cold.ok, cold.not_modified, cold.snapshots, cold.changes) == (n, 0, n, 0)
    assert (warm.ok, warm.not_modified, warm.snapshots, warm.changes) == (0, n, 0, 0)
    assert (changed.ok, changed.not_modified, changed.snapshots, changed.changes) == (2, 18, 2, 2)
    assert cold.db_growth_kb > 0
    engine = sa.create_engine(base)
    try:
        with engine.connect() as connection:
            names = connection.execute(sa.text("SELECT datname FROM pg_database")).scalars().all()
    finally:
        engine.dispose()
    assert not [name for name in names if name.startswith(scratch.NAME_PREFIX + f"_{os.getpid()}_")]


# --- soak ---------------------------------------------------------------------------------------


def test_the_soak_samples_every_cycle_and_the_service_exits_0(nginx_binary: Path) -> None:
    """benchmarks/soak.py at N = 20, 3 warm cycles of 2 s: a real ``monitor run`` process, a
    sample per cycle of 20 checks, every warm check a 304, a clean stop on SIGTERM."""
    soak_mod = load("bench_soak", "soak.py")
    seen: list[Any] = []
    soak = soak_mod.run(20, 3, 2.0, on_sample=seen.append)
    assert [sample.cycle for sample in soak.samples] == [0, 1, 2, 3] and seen == soak.samples
    # A cycle ends at the first count of at least 20 more checks: one may take a few of the next.
    assert all(sample.checks > 0 for sample in soak.samples)
    assert sum(sample.checks for sample in soak.samples) >= 80
    assert all(sample.rss_mb > 20 and sample.cpu >= 0 and sample.db_mb > 0 for sample in soak.samples)
    assert soak.samples[0].cpu > 0
    assert all(sample.wall >= 1.0 for sample in soak.warm)  # about one interval, plus jitter
    assert soak.warm_statuses[304] >= 60 and set(soak.warm_statuses) == {304}
    assert soak.outcomes["new"] == 20 and soak.outcomes["not_modified"] >= 60
    assert soak.exit_code == 0, soak.warnings
    assert soak.warnings == []
    lines = soak_mod.summary(soak)
    assert lines[0].startswith("RSS cycle 1: ") and "exit code 0" in lines[4]
