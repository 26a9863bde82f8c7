"""Smoke test of the load-benchmark harness: benchmarks/bench_fixtures.py and benchmarks/nginx.py.

The nginx tests need Debian's nginx; the harness installs it when running as root. When it is
missing and cannot be installed they are skipped, except when ``CI=true``: then they fail.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import socket
import time
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest

from tests.support.benchmarks import load

N = 100


fixtures_mod = load("bench_fixtures", "bench_fixtures.py")
nginx_mod = load("bench_nginx", "nginx.py")


def _nginx_binary() -> Path:
    in_ci = os.environ.get("CI", "").lower() == "true"
    try:
        return Path(nginx_mod.ensure_nginx())
    except RuntimeError as exc:
        if in_ci:
            pytest.fail(f"CI=true but nginx is unavailable: {exc}")
        pytest.skip(f"nginx is unavailable: {exc}")


def test_ensure_nginx_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nginx_mod, "find_nginx", lambda: None)
    monkeypatch.setattr(nginx_mod.os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match="apt-get install -y nginx"):
        nginx_mod.ensure_nginx()


@pytest.fixture(scope="module")
def nginx_binary() -> Path:
    return _nginx_binary()


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
