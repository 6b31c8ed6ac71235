"""The archive in Chromium (Playwright): filter, search, small screens, accessibility.

Needs /usr/bin/chromium (never `playwright install`). The site is built under `/archive/` with
the Pagefind index and served by `newsletter.archive.serve`; the search also runs through the
web app (uvicorn), which serves the archive under its Content-Security-Policy. axe-core comes
from the npm registry once per machine (cached in .pytest_cache); the check skips when npm
cannot get it (and fails under CI, like every missing outside tool: tests/outside_tools.py).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from archive_articles import with_articles
from browser import chromium
from conftest import FIXTURES
from outside_tools import require_tool
from smtp_sink import get_free_port
from web_server import uvicorn_in_thread

from newsletter import archive
from newsletter.archive import search
from newsletter.archive.serve import make_server
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import taxonomy_from_settings
from newsletter.store import engine as db
from newsletter.transport.memory import MemoryTransport
from newsletter.web import create_app

pytestmark = [pytest.mark.browser]

BASE = "/archive/"
ALL_SUMMARIES = 7  # every month of the fixture, --include-unsent
PAGES = [
    "",
    "2026-07/",
    "2026-06/therapist-empathy/",
    "2026-06/alliance-repair/",  # with article data: the downloads
    "topics/",
    "topics/group-psychotherapy/",
    "types/",
    "filter/",
    "search/",
    "about/",
    "no-such-page/",
]


def archive_settings(root: Path, base_url: str = "https://news.example.org"):
    return settings_from_dict(
        {
            "newsletter": {"name": "Test Digest", "base_url": base_url},
            "content": {"dir": str(FIXTURES / "archive_content")},
            "archive": {"base_path": BASE, "page_size": 2},
            "database": {"url": f"sqlite:///{root / 'subscribers.db'}"},
        },
        root,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The archive, built with its search index (the folder that is served as /archive/)."""
    require_tool(search.available(), "Pagefind is not installed (pip install 'pagefind[bin]')")
    root = tmp_path_factory.mktemp("archive")
    settings = archive_settings(root)
    taxonomy = taxonomy_from_settings(settings)
    issues = with_articles(archive.read_issues(settings.content.dir, taxonomy, "Test Digest"))
    result = archive.build_site(
        settings, taxonomy, root / "site", include_unsent=True, issues=issues
    )
    assert result.search == "indexed"
    return result.out


@pytest.fixture(scope="module")
def site_url(site):
    server = make_server(site, BASE, port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}{BASE}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def visible_titles(page) -> list[str]:
    return page.locator("#filter-list > li:visible .card-title").all_inner_texts()


def test_filter_narrows_the_list_and_keeps_the_url(page, site_url):
    page.goto(site_url + "filter/")
    assert len(visible_titles(page)) == ALL_SUMMARIES
    page.get_by_label("Group Psychotherapy").check()
    assert visible_titles(page) == [
        "Group and Individual Formats Work Equally Well for Depression",
        "Pre-Group Preparation Improves Attendance",
    ]
    assert page.url.endswith("filter/?topic=group-psychotherapy")
    page.get_by_label("Meta-analysis").check()
    assert visible_titles(page) == ["Group and Individual Formats Work Equally Well for Depression"]
    assert page.url.endswith("?topic=group-psychotherapy&type=meta-analysis")
    assert "Showing 1 of 7 summaries" in page.locator("#filter-status").inner_text()

    # The URL round-trips: opening it restores the ticks and the narrowed list.
    shared = page.url
    page.goto(site_url)
    page.goto(shared)
    assert page.get_by_label("Group Psychotherapy").is_checked()
    assert page.get_by_label("Meta-analysis").is_checked()
    assert len(visible_titles(page)) == 1

    # Several topics: any (the default) widens, all narrows.
    page.goto(
        site_url + "filter/?topic=depression-and-depressive-symptoms&topic=group-psychotherapy"
    )
    assert len(visible_titles(page)) == 3
    page.get_by_label("all ticked topics").check()
    assert visible_titles(page) == ["Group and Individual Formats Work Equally Well for Depression"]
    assert "match=all" in page.url

    page.get_by_role("link", name="Clear all").click()
    assert len(visible_titles(page)) == ALL_SUMMARIES
    assert page.url.endswith("/filter/")


@pytest.fixture
def web_app_url(site, tmp_path):
    """The web app under uvicorn, serving the archive under /archive/ (as `newsletter serve`)."""

    port = get_free_port()
    settings = archive_settings(tmp_path, f"http://127.0.0.1:{port}")
    settings.archive.dir = site
    engine = db.make_engine(settings.database.url)
    db.upgrade(engine)
    app = create_app(settings, engine=engine, transport_factory=MemoryTransport)
    assert app.state.ctx.archive_mounted
    try:
        with uvicorn_in_thread(app, port):
            yield f"http://127.0.0.1:{port}{BASE}"
    finally:
        engine.dispose()


def test_search_finds_a_summary_by_a_word_from_its_body(page, site_url):
    search_and_open_a_result(page, site_url)


def test_search_works_where_the_web_app_serves_the_archive(page, web_app_url):
    # The app's Content-Security-Policy must let Pagefind compile its WebAssembly here, or
    # the page says "Search is not available".
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text))
    search_and_open_a_result(page, web_app_url)
    assert not [text for text in refused if "WebAssembly" in text or "Content Security" in text]
    # The feed's XSLT page and its stylesheets pass the app's policy too.
    page.goto(web_app_url + "feeds/atom.xml")
    assert page.locator("h1").inner_text() == "Test Digest"
    header = "getComputedStyle(document.querySelector('.site-header')).backgroundColor"
    assert page.evaluate(header) == "rgb(16, 42, 67)"
    # (Chromium 156 injects a banner about XSLT going away, with an inline handler that the
    # policy blocks; that is the browser's markup, not ours: only style and our scripts count.)
    blocked = [text for text in refused if "Content Security" in text]
    assert not [text for text in blocked if "inline event handler" not in text], blocked


def search_and_open_a_result(page, site_url: str) -> None:
    page.goto(site_url + "search/")
    page.get_by_label("Words to look for").fill("zephyrine")
    page.get_by_role("button", name="Search").click()
    result = page.locator("#search-results li a").first
    result.wait_for()
    assert result.inner_text() == "Clients Notice Empathy More Than Technique"
    assert result.get_attribute("href") == BASE + "2026-06/therapist-empathy/"
    assert "1 summary found" in page.locator("#search-status").inner_text()
    assert page.url.endswith("search/?q=zephyrine")
    result.click()
    page.wait_for_url("**/2026-06/therapist-empathy/")
    assert page.locator("h1").inner_text() == "Clients Notice Empathy More Than Technique"


def test_search_from_the_url_and_with_no_match(page, site_url):
    page.goto(site_url + "search/?q=relapse")
    page.locator("#search-results li").first.wait_for()
    page.get_by_label("Words to look for").fill("qwxyzzy")
    page.get_by_role("button", name="Search").click()
    page.wait_for_function(
        "document.getElementById('search-status').textContent.startsWith('No summary')"
    )
    assert page.locator("#search-results li").count() == 0


@pytest.mark.parametrize("path", PAGES)
def test_no_horizontal_scroll_on_a_phone(browser, site_url, path):
    context = browser.new_context(viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        page.goto(site_url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path or 'home'} is {width}px wide at 375px"
    finally:
        context.close()


def test_cite_the_article_downloads_and_cite_this_summary_copies(browser, site_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.goto(site_url + "2026-06/alliance-repair/")
        with page.expect_download() as download:
            page.get_by_role("link", name="BibTeX").click()
        assert download.value.suggested_filename == "model2025rupture.bib"
        assert download.value.path().read_text().startswith("@article{model2025rupture,")
        button = page.get_by_role("button", name="Copy citation")
        button.click()  # hidden until the script finds a clipboard
        page.get_by_text("Copied.").wait_for()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator("#cite-summary").inner_text()
        assert copied.startswith("Test Digest. (2026, June). Repairing Ruptures")
    finally:
        context.close()


@pytest.fixture(scope="session")
def axe_script(pytestconfig, tmp_path_factory) -> Path:
    if getattr(pytestconfig, "cache", None) is not None:
        cache = pytestconfig.cache.mkdir("axe-core")
    else:  # -p no:cacheprovider
        cache = tmp_path_factory.mktemp("axe-core")
    script = cache / "node_modules" / "axe-core" / "axe.min.js"
    # pytest-xdist runs this fixture once per worker: one npm install at a time into the cache.
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.exists():
            _install_axe(cache, script)
    return script


def _install_axe(cache: Path, script: Path) -> None:
    """Fetch axe-core from the npm registry into `cache` (once per machine)."""
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


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_or_critical_issues(browser, site_url, axe_script, scheme):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    problems = []
    try:
        page = context.new_page()
        for path in PAGES:
            page.goto(site_url + path)
            page.add_script_tag(path=str(axe_script))
            violations = page.evaluate("async () => (await axe.run(document)).violations")
            for violation in violations:
                if violation["impact"] in ("serious", "critical"):
                    targets = [node["target"] for node in violation["nodes"]][:3]
                    problems.append(f"/{path}: {violation['id']}: {json.dumps(targets)}")
    finally:
        context.close()
    assert problems == []


# -- the side panel, search filters and the feed page (issue 14) -----------------------------


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def test_side_panel_is_a_column_beside_the_page_at_1280(browser, site_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(site_url + "2026-06/therapist-empathy/")
        panel, main = box(page, "aside.side-panel"), box(page, "main")
        assert panel["x"] + panel["width"] <= main["x"], "the panel is beside the page"
        assert panel["y"] < 200 and abs(panel["y"] - main["y"]) < 40, "both start at the top"
        for name in ("Topics", "Type of research", "Issues by month"):
            assert page.locator("aside details", has_text=name).first.get_attribute("open") == ""
        empathy = page.locator("aside").get_by_role("link", name="Empathy", exact=True)
        assert empathy.is_visible()
        page.mouse.wheel(0, 800)  # sticky: still in view further down the page
        assert page.locator("aside").get_by_role("link", name="All topics").is_visible()
        empathy.click()
        page.wait_for_url("**/topics/empathy/")
        assert page.locator("h1").inner_text() == "Empathy"
        current = page.locator("aside a[aria-current='page']")
        assert current.all_inner_texts() == ["Empathy"]
        page.locator("aside").get_by_role("link", name="June 2026").click()
        page.wait_for_url("**/2026-06/")
    finally:
        context.close()


def test_side_panel_is_a_folded_top_panel_at_375(browser, site_url):
    context = browser.new_context(viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        page.goto(site_url + "topics/adherence/")
        panel, main = box(page, "aside.side-panel"), box(page, "main")
        assert panel["y"] + panel["height"] <= main["y"], "the panel is above the page"
        assert panel["height"] < 200, f"folded, the panel is {panel['height']}px tall"
        assert main["y"] < 740, "the page's heading starts on the first screen"
        topics = page.locator("aside summary", has_text="Topics")
        assert not page.locator("aside").get_by_role("link", name="Empathy").is_visible()
        topics.click()
        page.locator("aside").get_by_role("link", name="Empathy", exact=True).click()
        page.wait_for_url("**/topics/empathy/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{width}px wide at 375px"
    finally:
        context.close()


def test_without_javascript_the_panel_stays_open(browser, site_url):
    context = browser.new_context(viewport={"width": 375, "height": 740}, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(site_url)
        assert page.locator("aside").get_by_role("link", name="Empathy").is_visible()
    finally:
        context.close()


def search_titles(page) -> list[str]:
    page.wait_for_function(
        "(s => s && !s.textContent.startsWith('Searching') && s.textContent !== '')"
        "(document.getElementById('search-status'))"
    )
    return page.locator("#search-results li h2 a").all_inner_texts()


def test_search_finds_summaries_by_topic_and_type_names(page, site_url):
    page.goto(site_url + "search/?q=efficacy")  # only in the topic name "Efficacy of Treatments"
    assert search_titles(page) == ["Group and Individual Formats Work Equally Well for Depression"]
    page.goto(site_url + "search/?q=qualitative")  # the type's name (and one journal's)
    assert search_titles(page) == ["Clients Notice Empathy More Than Technique"]
    page.goto(site_url + "search/?q=zzzqqq")
    assert search_titles(page) == []
    assert page.locator("#search-status").inner_text() == "No summary matches."


def test_search_filters_by_type_and_topic_and_keeps_them_in_the_url(page, site_url):
    page.goto(site_url + "search/")
    page.get_by_label("Type of research").select_option("Meta-analysis")
    assert sorted(search_titles(page)) == [  # no words: every summary of the type
        "Group and Individual Formats Work Equally Well for Depression",
        "Session-by-Session Feedback Halves Deterioration",
    ]
    assert page.url.endswith("search/?type=Meta-analysis")
    page.get_by_label("Topic").select_option("Group Psychotherapy")
    page.wait_for_url("**topic=Group+Psychotherapy")
    assert search_titles(page) == ["Group and Individual Formats Work Equally Well for Depression"]
    page.get_by_label("Words to look for").fill("zzzqqq")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**q=zzzqqq**")
    assert search_titles(page) == []
    # A shared address brings the same search back, filters chosen.
    page.goto(site_url + "search/?q=depression&type=Randomized+controlled+trial")
    assert page.get_by_label("Type of research").input_value() == "Randomized controlled trial"
    assert search_titles(page) == ["CBT Gains for Depression Last Two Years"]


def test_the_atom_feed_is_a_readable_page_in_the_browser(page, site_url):
    page.goto(site_url + "feeds/types/meta-analysis.xml")
    assert page.locator("h1").inner_text() == "Test Digest: Meta-analysis"
    assert page.locator("code").inner_text().endswith("/archive/feeds/types/meta-analysis.xml")
    assert page.locator("ol.results h2 a").count() == 2
    colour = page.evaluate(
        "getComputedStyle(document.querySelector('.site-header')).backgroundColor"
    )
    assert colour == "rgb(16, 42, 67)"  # look.css: the shared navy header
