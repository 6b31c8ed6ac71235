"""Chromium for browser tests: Debian's build at /usr/bin/chromium, driven by Playwright."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from outside_tools import require_module
from outside_tools import require_tool

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (we run as root in CI); no background traffic (the network is closed here).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def sync_api() -> ModuleType:
    """`playwright.sync_api`, once Chromium is there: skips without either, fails under CI."""
    require_tool(CHROMIUM.exists(), f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    return require_module("playwright.sync_api", "needs the playwright package")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright `Browser`), closed afterwards."""
    with sync_api().sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
