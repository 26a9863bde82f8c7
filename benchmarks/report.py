"""Time the HTML history report on a large history: ``python benchmarks/report.py [-n N] [--no-browser]``.

Builds in memory a history of N changes (default 10,000: 20 countries × 5 sources — four
ministries with levels and a carrier — each change with reasons, a quoted sentence and a
three-line diff), then prints

* the median of three runs of :func:`monitor.report.html.render_report`, and the file's size;
* with a Chromium (:func:`monitor.browser.find_browser`), the page opened from a file:// URL in
  headless Chromium: the time to the ``load`` event, to apply a class filter (unchecking
  "update", until the next frame is painted), and to show one chunk of older changes.

See benchmarks/README.md for measured figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.models import ChangeClass, NoticeStatus
from monitor.report.history import ChangeEntry, History, NoticeView, Point, SourceView, Window
from monitor.report.html import render_report

COUNTRIES = tuple("AF BF CD CF ET HT IQ IR LB LY ML MM NE NG PK SD SO SS SY YE".split())
MINISTRIES = (
    ("uk", "UK FCDO"),
    ("us", "US State Department"),
    ("fr", "France Diplomatie"),
    ("de", "Auswärtiges Amt"),
)
CARRIER = ("msc", "MSC")
HOURS = {"uk": 9, "us": 15, "fr": 11, "de": 7, "msc": 13}  # when each publishes, UTC
START = datetime(2024, 6, 1, tzinfo=UTC)
CLASSES = (
    ChangeClass.UPDATE,
    ChangeClass.NOISE,
    ChangeClass.HEIGHTENED,
    ChangeClass.UPDATE,
    ChangeClass.RELAXED,
    ChangeClass.SEVERE,
    ChangeClass.UPDATE,
    ChangeClass.CRITICAL,
    ChangeClass.NOISE,
    ChangeClass.UPDATE,
)
STATUSES = (NoticeStatus.SUSPENSION, NoticeStatus.RESUMPTION, NoticeStatus.DISRUPTION, NoticeStatus.INFO)
_LEAVE = "Leave by commercial means now."
_SENTENCE = (
    "Armed groups remain active in the north and centre of the country, and attacks on roads, "
    "markets and places of worship may happen without warning in version {n}."
)


def _source(id_: str, kind: str, publisher: str) -> SourceView:
    checked = START + timedelta(days=420)
    return SourceView(
        id=id_,
        kind=kind,
        publisher=publisher,
        url=f"https://example.org/{id_}",
        active=True,
        countries=COUNTRIES,
        interval=timedelta(minutes=15),
        health="ok",
        health_reason=None,
        health_since=None,
        last_check_at=checked,
        last_outcome="unchanged",
        last_error=None,
        consecutive_failures=0,
        last_success_at=checked,
    )


def _change(number: int, source: SourceView, country: str, step: int, level: int | None) -> ChangeEntry:
    detected = START + timedelta(
        days=4 * step,
        hours=HOURS[source.id],
        minutes=COUNTRIES.index(country),
    )
    change_class = CLASSES[number * 7 % len(CLASSES)]
    notice = None
    if level is None:
        status = STATUSES[step % len(STATUSES)]
        notice = NoticeView(
            f"{country}-{step}",
            f"{status.value.title()} of bookings for {country}",
            source.url,
            status,
            detected,
        )
    before, after = _SENTENCE.format(n=step), _SENTENCE.format(n=step + 1).replace("markets", "airports")
    return ChangeEntry(
        id=number,
        source_id=source.id,
        kind=source.kind,
        publisher=source.publisher,
        key=country,
        countries=(country,),
        detected_at=detected,
        published_at=detected - timedelta(minutes=35) if step % 3 else None,
        change_class=change_class,
        reasons=(f"level raised: “{after}”", "staff departure: authorized → ordered"),
        diff=f"--- before\n+++ after\n@@ -1,2 +1,3 @@\n-{before}\n+{after}\n+{_LEAVE}\n",
        level_before=None if level is None else 1 + (level + 2) % 4,
        level_after=level,
        label_before=None if level is None else f"Level {1 + (level + 2) % 4}",
        label_after=None if level is None else f"Level {level}",
        title=f"Travel advice for {country}",
        url=f"{source.url}/{country}",
        notice=notice,
        alerts_sent=1 if step % 5 else 0,
        alerts_failed=0 if step % 5 else 1,
        alerts_pending=0,
        first_sent_at=detected + timedelta(seconds=5) if step % 5 else None,
    )


def large_history(changes: int = 10_000) -> History:
    """A history of ``changes`` changes (rounded down to a multiple of 100, at least 100), spread
    evenly over 20 countries and 5 sources; every change has the snapshot it was found in."""
    steps = max(1, changes // (len(COUNTRIES) * (len(MINISTRIES) + 1)))
    sources = [_source(id_, "ministry", name) for id_, name in MINISTRIES] + [
        _source(CARRIER[0], "msc", CARRIER[1])
    ]
    entries: list[ChangeEntry] = []
    points: list[Point] = []
    for country in COUNTRIES:
        for source in sources:
            leveled = source.kind == "ministry"
            points.append(
                Point(
                    source.id,
                    country,
                    country,
                    START,
                    2 if leveled else None,
                    "Level 2" if leveled else None,
                    None,
                )
            )
            for step in range(steps):
                level = 1 + (step // 6 + sources.index(source)) % 4 if leveled else None
                entry = _change(len(entries) + 1, source, country, step, level)
                entries.append(entry)
                label = f"Level {level}" if level else None
                points.append(
                    Point(source.id, country, country, entry.detected_at, level, label, entry.notice)
                )
    return History(
        generated_at=START + timedelta(days=4 * steps + 1),
        window=Window(),
        sources=tuple(sources),
        countries=COUNTRIES,
        points=tuple(sorted(points, key=lambda p: p.at)),
        changes=tuple(sorted(entries, key=lambda c: c.detected_at)),
        health_events=(),
        alerts={"sent": len(entries), "failed": 0, "pending": 0},
    )


def _render(history: History) -> tuple[float, str]:
    times, page = [], ""
    for _ in range(3):
        started = time.perf_counter()
        page = render_report(history)
        times.append(time.perf_counter() - started)
    return statistics.median(times), page


def _browse(path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from monitor.browser import find_browser, launch_args
    from monitor.errors import FetchError

    try:
        chromium = find_browser()
    except FetchError as exc:
        print(f"browser: skipped ({exc.message})")
        return
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium, args=launch_args(as_root=as_root), chromium_sandbox=not as_root
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        started = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load", timeout=120_000)
        loaded = time.perf_counter() - started
        filtered = page.evaluate(_TIMED_CLICK, 'input[data-filter="class"][value="update"]')
        older = page.evaluate(_TIMED_CLICK, "button.show-older")
        browser.close()
    print(f"browser: load event     {loaded:6.2f} s")
    print(f"browser: class filter   {filtered / 1000:6.2f} s (until the next frame)")
    print(f"browser: show older     {older / 1000:6.2f} s (until the next frame)")


# Milliseconds from a click to the next frame, the page's layout brought up to date.
_TIMED_CLICK = """async (selector) => {
    const started = performance.now();
    document.querySelector(selector).click();
    document.documentElement.getBoundingClientRect();
    await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
    return performance.now() - started;
}"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="changes in the history (default 10,000)")
    parser.add_argument("--no-browser", action="store_true", help="do not open the report in Chromium")
    args = parser.parse_args(argv)
    history = large_history(args.n)
    seconds, page = _render(history)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "report.html"
        path.write_text(page, encoding="utf-8")
        size = path.stat().st_size
        counts = len(history.changes), len(history.countries), len(history.sources)
        print("{} changes, {} countries, {} sources".format(*counts))
        print(f"render_report: median {seconds:.2f} s of 3; file {size / 1e6:.1f} MB")
        if not args.no_browser:
            _browse(path)


if __name__ == "__main__":
    main()
