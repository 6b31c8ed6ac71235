"""Full-text search with Pagefind: index the built folder; the site works without it.

Pagefind (the PyPI package `pagefind[bin]` ships the binary) writes its index and its small
JavaScript API into `pagefind/` inside the site. Only summary pages are indexed: their
`<article>` carries `data-pagefind-body`.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from newsletter.errors import ArchiveError


def pagefind_command() -> list[str] | None:
    """How to run Pagefind here, or None when it is not installed."""
    if importlib.util.find_spec("pagefind") is not None and any(
        importlib.util.find_spec(name) is not None
        for name in ("pagefind_bin", "pagefind_bin_extended")
    ):
        return [sys.executable, "-m", "pagefind"]
    binary = shutil.which("pagefind")
    return [binary] if binary else None


def available() -> bool:
    return pagefind_command() is not None


def index_site(folder: Path, language: str = "en") -> None:
    """Index `folder` in place; ArchiveError if Pagefind is missing or fails."""
    command = pagefind_command()
    if command is None:
        raise ArchiveError("Pagefind is not installed: pip install 'pagefind[bin]'")
    result = subprocess.run(
        [*command, "--site", str(folder), "--force-language", language, "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ArchiveError("Pagefind failed: " + " / ".join(tail))
