"""One look for the web app's pages and the archive: the same header partial, the same shared
stylesheet (look.css) and favicon, served by the app at /static/ and copied into the archive."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES
from outside_tools import require_module

from newsletter import archive
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import default_taxonomy

pytest_plugins = ["test_web_support"]

bs4 = require_module("bs4", "needs beautifulsoup4")
SHARED = Path(__file__).parent.parent / "templates" / "shared" / "static"


def skeleton(header) -> list[str]:
    """The header's element structure (tags and classes), without its words and links."""
    return [f"{tag.name}.{'.'.join(tag.get('class', []))}" for tag in header.find_all(True)][:4]


@pytest.fixture
def archive_page(tmp_path):
    settings = settings_from_dict(
        {
            "newsletter": {"name": "Test Digest", "base_url": "https://news.example.org"},
            "content": {"dir": str(FIXTURES / "archive_content")},
            "database": {"url": "sqlite:///subscribers.db"},
        },
        tmp_path,
    )
    site = archive.build_site(
        settings, default_taxonomy(), tmp_path / "site", sent={"2026-05"}, search=False
    ).out
    return site, bs4.BeautifulSoup((site / "index.html").read_text(), "html.parser")


@pytest.mark.parametrize("name", ["look.css", "favicon.svg"])
def test_the_app_serves_the_shared_files(client, name):
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.content == (SHARED / name).read_bytes()
    assert client.get("/static/web.css").status_code == 200  # its own stylesheet still


@pytest.mark.parametrize("path", ["/subscribe", "/admin/login"])
def test_web_pages_and_the_archive_share_header_stylesheet_and_favicon(client, archive_page, path):
    site, archive_soup = archive_page
    page = bs4.BeautifulSoup(client.get(path).text, "html.parser")
    sheets = [link["href"] for link in page.head.find_all("link", rel="stylesheet")]
    # The admin's pages add their own sheet after the shared two.
    expected = ["/static/web.css", "/static/look.css"]
    assert sheets == expected + (["/static/admin.css"] if path.startswith("/admin") else [])
    assert page.head.find("link", rel="icon")["href"] == "/static/favicon.svg"
    archive_sheets = [link["href"] for link in archive_soup.head.find_all("link", rel="stylesheet")]
    assert archive_sheets[-1] == "/static/look.css"  # last in both: its rules win
    assert (site / "static/look.css").read_bytes() == (SHARED / "look.css").read_bytes()
    web_header = page.find("header", class_="site-header")
    archive_header = archive_soup.find("header", class_="site-header")
    assert skeleton(web_header) == skeleton(archive_header)
    assert web_header.find("a", class_="brand").get_text() == "Test Digest"
    assert archive_header.find("a", class_="brand").get_text() == "Test Digest"


def test_the_admin_keeps_its_own_links_in_the_shared_header(admin):
    page = bs4.BeautifulSoup(admin.get("/admin/issues").text, "html.parser")
    nav = page.find("header", class_="site-header").find("nav", class_="site-nav")
    labels = [a.get_text() for a in nav.find_all("a")]
    assert labels == ["Issues", "Subscribers", "Import", "Schedule", "Audit log"]
    assert nav.find("button", string="Log out admin")  # the logged-in admin by name
