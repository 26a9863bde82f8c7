"""The email body as a reader sees it: rendered by Chromium at a phone's width.

Skipped without a Chromium, except when ``CI=true`` (CI installs one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from monitor.alerts.render import AlertView, render_alert, render_digest
from tests.support import chromium
from tests.test_render import view

CHROMIUM = chromium.required()

PHONE = {"width": 360, "height": 740}
LONG_URL = (
    "https://www.diplomatie.gouv.fr/fr/conseils-aux-voyageurs/conseils-par-pays-destination/mali/"
    "?utm_source=alerte&utm_medium=courriel&utm_campaign=ressortissants-depart-temporaire-recommande"
)


LONG_DIFF = (
    "--- a\n+++ b\n@@ -1,1 +1,3 @@\n-Publié le 4 novembre 2025\n+Publié le 7 novembre 2025\n"
    "+En raison de la dégradation continue de la situation sécuritaire, y compris aux abords de "
    "Bamako, il est recommandé aux ressortissants français de prévoir un départ temporaire du Mali "
    "dès que possible par les vols commerciaux encore disponibles.\n"
)


def france_view() -> AlertView:
    return view(url=LONG_URL, diff=LONG_DIFF)


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with chromium.launched(CHROMIUM) as browser:
        yield browser.new_page(viewport=PHONE)


def _layout(page: Page, html: str, screenshot: Path) -> dict[str, float]:
    page.set_content(html)
    page.screenshot(path=str(screenshot), full_page=True)
    if keep := os.environ.get("MONITOR_KEEP_SCREENSHOTS"):
        Path(keep, screenshot.name).write_bytes(screenshot.read_bytes())
    return page.evaluate(
        """() => ({
            scroll: document.documentElement.scrollWidth,
            width: window.innerWidth,
            font: parseFloat(getComputedStyle(document.body).fontSize),
            smallest: Math.min(...[...document.querySelectorAll('p, li, a, td, div')]
                .filter(e => e.innerText && e.innerText.trim())
                .map(e => parseFloat(getComputedStyle(e).fontSize))),
        })"""
    )


def test_alert_email_fits_a_phone_screen_and_reads_in_order(page: Page, tmp_path: Path) -> None:
    message = render_alert(france_view())
    layout = _layout(page, message.html, tmp_path / "alert.png")
    assert layout["scroll"] <= layout["width"], "the email scrolls sideways on a phone"
    assert layout["smallest"] >= 12
    text = page.inner_text("body")
    order = ["CRITICAL", "Mali", "France Diplomatie", "Why", "nationals urged to leave", "What changed"]
    positions = [text.index(word) for word in order]
    assert positions == sorted(positions), text
    assert page.get_attribute(f'a[href="{LONG_URL}"]', "href") == LONG_URL
    assert "7 Nov 2025 09:12 UTC" in text
    assert "change-42-ops-email" in text


def test_digest_email_fits_a_phone_screen(page: Page, tmp_path: Path) -> None:
    views = [france_view(), france_view()]
    message = render_digest("morning-brief", "24 hours to 7 Nov 2025 07:00 UTC", views)
    layout = _layout(page, message.html, tmp_path / "digest.png")
    assert layout["scroll"] <= layout["width"]
    assert page.inner_text("body").count("Detected: 7 Nov 2025 09:12 UTC") == 2
