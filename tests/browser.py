"""Chromium for browser tests: Debian's build at /usr/bin/chromium, driven by Playwright."""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import subprocess
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


def axe_core(cache: Path) -> Path:
    """axe.min.js, fetched from the npm registry into `cache` once per machine (skips without
    npm, fails under CI). pytest-xdist workers share the cache: one install at a time."""
    script = cache / "node_modules" / "axe-core" / "axe.min.js"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.exists():
            npm = shutil.which("npm")
            require_tool(npm, "npm is not installed: cannot fetch axe-core")
            done = subprocess.run(
                [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "axe-core@4"],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            require_tool(
                done.returncode == 0 and script.exists(),
                f"npm could not install axe-core: {done.stderr.strip()[-300:]}",
            )
    return script


def serious_violations(page: Any, label: str) -> list[str]:
    """axe-core's serious and critical violations on `page` (axe already injected), one line
    each: `label: rule: the first three targets`."""
    # Only violations are asked for: skipping passes and incomplete results halves the time.
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        f"{label}: {v['id']}: {json.dumps([n['target'] for n in v['nodes']][:3])}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
