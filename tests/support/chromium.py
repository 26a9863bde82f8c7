"""Headless Chromium for the tests that look at a page as a reader does.

``required()`` is called at module level: without a Chromium the module is skipped, except
when ``CI=true`` (CI installs Debian's ``chromium``), where it fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, sync_playwright

from monitor.browser import find_browser, launch_args
from monitor.errors import FetchError


def required() -> str:
    """The Chromium executable; skips (or, with CI=true, fails) the calling module without one."""
    try:
        return find_browser()
    except FetchError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true, and CI installs Chromium, but: {exc.message}", pytrace=False)
        pytest.skip(exc.message, allow_module_level=True)


@contextmanager
def launched(executable: str) -> Iterator[Browser]:
    """Chromium started through Playwright (without its sandbox when running as root)."""
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable, args=launch_args(as_root=as_root), chromium_sandbox=not as_root
        )
        try:
            yield browser
        finally:
            browser.close()
