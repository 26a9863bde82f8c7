"""The HTML history report as a reader uses it: opened from a file in headless Chromium, filtered,
paged, on a laptop's and a phone's width, without a script error or a single request beyond the
file itself.

Skipped without a Chromium, except when ``CI=true`` (CI installs one).
"""

from __future__ import annotations

import os
import runpy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request

from monitor.report.history import History
from monitor.report.html import render_report
from tests.support import chromium
from tests.support.histories import mali_history

CHROMIUM = chromium.required()

ROOT = Path(__file__).resolve().parents[1]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
CRITICAL_BOX = 'input[data-filter="class"][value="critical"]'
MSC_BOX = 'input[data-filter="source"][value="msc"]'


@dataclass
class Opened:
    """A report open in a page, with what went wrong while it was."""

    page: Page
    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_quiet(self) -> None:
        assert self.errors == []
        assert self.requests == [self.url]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium.launched(CHROMIUM) as launched:
        yield launched


def open_report(browser: Browser, history: History, path: Path, viewport: dict[str, int]) -> Opened:
    path.write_text(render_report(history), encoding="utf-8")
    page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    opened = Opened(page, path.as_uri())
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on("console", lambda message: _console(opened, message))
    page.on("request", lambda request: _request(opened, request))
    page.goto(opened.url)
    return opened


def _console(opened: Opened, message: ConsoleMessage) -> None:
    if message.type == "error":
        opened.errors.append(message.text)


def _request(opened: Opened, request: Request) -> None:
    opened.requests.append(request.url)


def screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    if keep := os.environ.get("MONITOR_KEEP_SCREENSHOTS"):
        Path(keep, path.name).write_bytes(path.read_bytes())


def visible(page: Page, selector: str) -> int:
    """How many elements matching ``selector`` are rendered (built and not hidden)."""
    return int(page.eval_on_selector_all(selector, "found => found.filter(e => e.checkVisibility()).length"))


def drawn(page: Page, selector: str) -> int:
    """How many of the SVG shapes are drawn: a level's straight line has no height, which
    Playwright's visibility test takes for invisible."""
    return int(
        page.eval_on_selector_all(
            selector, "shapes => shapes.filter(s => s.getBoundingClientRect().width > 0).length"
        )
    )


def shown_count(page: Page) -> str:
    return page.inner_text("#shown-count")


def test_report_shows_state_timeline_and_changes_and_filters_them(browser: Browser, tmp_path: Path) -> None:
    opened = open_report(browser, mali_history(), tmp_path / "report.html", LAPTOP)
    page = opened.page
    assert page.locator("table.matrix").is_visible()
    assert page.inner_text("table.matrix tbody td >> nth=0").startswith("4")
    assert drawn(page, "#country-ML svg.timeline path.step") == 3
    assert visible(page, "#country-ML svg.timeline circle[data-class]") == 8
    assert visible(page, "#country-ML li.change") == 8
    assert shown_count(page) == "8"

    page.uncheck(CRITICAL_BOX)
    assert visible(page, 'li.change[data-class="critical"]') == 0
    assert visible(page, 'circle[data-class="critical"]') == 0
    assert visible(page, "li.change") == 5
    assert shown_count(page) == "5"
    page.check(CRITICAL_BOX)
    assert visible(page, 'li.change[data-class="critical"]') == 3
    assert visible(page, 'circle[data-class="critical"]') == 3
    assert shown_count(page) == "8"

    page.uncheck(MSC_BOX)
    assert visible(page, 'li.change[data-source="msc"]') == 0
    assert visible(page, 'circle[data-source="msc"]') == 0
    assert not page.locator('g.lane[data-source="msc"]').is_visible()
    assert shown_count(page) == "6"
    page.uncheck(CRITICAL_BOX)
    assert shown_count(page) == "3"
    page.check(MSC_BOX)
    page.check(CRITICAL_BOX)
    assert visible(page, "li.change") == 8

    page.click('table.matrix a[href="#country-ML"]')
    assert page.evaluate("location.hash") == "#country-ML"
    screenshot(page, tmp_path / "report-laptop.png")
    page.emulate_media(media="print")
    assert not page.locator("#filters").is_visible()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    opened.assert_quiet()


def test_report_fits_a_phone_without_sideways_scrolling(browser: Browser, tmp_path: Path) -> None:
    opened = open_report(browser, mali_history(), tmp_path / "report.html", PHONE)
    page = opened.page
    layout = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert layout[0] <= layout[1], "the report scrolls sideways on a phone"
    assert page.locator("#country-ML svg.timeline").is_visible()
    assert page.locator("li.change >> nth=0").is_visible()
    screenshot(page, tmp_path / "report-phone.png")
    opened.assert_quiet()


def test_a_large_report_opens_pages_and_filters(browser: Browser, tmp_path: Path) -> None:
    history = runpy.run_path(str(ROOT / "benchmarks" / "report.py"), run_name="benchmark")["large_history"]()
    updates = sum(1 for change in history.changes if change.change_class == "update")
    opened = open_report(browser, history, tmp_path / "large.html", LAPTOP)
    page = opened.page
    af = "#country-AF li.change"
    assert page.locator(af).count() == 25
    assert page.inner_text("#country-AF .left") == "475 older changes not shown"

    page.click("#country-AF button.show-older")
    assert visible(page, af) == 125
    assert page.inner_text("#country-AF .left") == "375 older changes not shown"

    page.uncheck('input[data-filter="class"][value="update"]')
    assert shown_count(page) == str(len(history.changes) - updates)
    assert visible(page, '#country-AF li.change[data-class="update"]') == 0
    for section in ("#country-AF", "#country-YE"):
        assert visible(page, f"{section} li.change") >= 25
    before = visible(page, "#country-YE li.change")
    page.click("#country-YE button.show-older")
    assert visible(page, "#country-YE li.change") == before + 100
    assert visible(page, '#country-YE li.change[data-class="update"]') == 0

    page.check('input[data-filter="class"][value="update"]')
    assert shown_count(page) == "10000"
    opened.assert_quiet()
