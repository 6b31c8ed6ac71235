"""The static archive: golden output, page counts, links, feeds, sitemap, publishing, writer.

Regenerate the golden tree after an intended change to the theme or the generator with
`UPDATE_GOLDEN=1 pytest tests/test_archive.py -k golden`, then review the diff of
tests/fixtures/archive_expected/ before committing it.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from archive_articles import with_articles
from conftest import FIXTURES
from conftest import write_config
from outside_tools import require_module
from outside_tools import update_golden

from newsletter import archive
from newsletter.archive import search
from newsletter.archive.generator import generate
from newsletter.archive.generator import site_info
from newsletter.archive.generator import teaser
from newsletter.archive.serve import make_server
from newsletter.archive.writer import MARKER
from newsletter.archive.writer import Writer
from newsletter.cli import main
from newsletter.config import Settings
from newsletter.config import normalize_base_path
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ArchiveError
from newsletter.errors import ContentProblems
from newsletter.store import engine as db
from newsletter.store import models

bs4 = require_module("bs4", "needs beautifulsoup4")
feedparser = require_module("feedparser", "needs feedparser")

CONTENT = FIXTURES / "archive_content"
EXPECTED = FIXTURES / "archive_expected"
SENT = {"2026-05", "2026-06"}  # 2026-07 is public: true, 2026-08 is a draft
PUBLISHED = ["2026-07", "2026-06", "2026-05"]
SUMMARIES = 6
TOPICS = 11  # topics that some published summary has
TYPES = 4
ALL_TOPICS = 36  # every topic of the taxonomy has a page and a feed
ALL_TYPES = 6


def archive_settings(tmp_path: Path, **archive_options) -> Settings:
    data = {
        "newsletter": {"name": "Test Digest", "base_url": "https://news.example.org"},
        "content": {"dir": str(CONTENT)},
        "archive": {"page_size": 1, **archive_options},
        "database": {"url": "sqlite:///subscribers.db"},
    }
    return settings_from_dict(data, tmp_path)


def build(
    tmp_path: Path, taxonomy: Taxonomy, out: str = "site", *, articles: bool = False, **options
) -> Path:
    """Build the fixture site; with `articles`, two summaries carry structured article data
    (tests/archive_articles.py), as the reader gives it from `article:` front matter."""
    archive_options = options.pop("archive_options", {})
    settings = archive_settings(tmp_path, **archive_options)
    options.setdefault("sent", SENT)
    options.setdefault("search", False)
    if articles:
        options["issues"] = with_articles(archive.read_issues(CONTENT, taxonomy, "Test Digest"))
    result = archive.build_site(settings, taxonomy, tmp_path / out, **options)
    return result.out


def html_files(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))


def page_url(relative: str) -> str:
    """'2026-05/index.html' -> '2026-05/'; '404.html' stays."""
    return relative.removesuffix("index.html")


# -- golden output --------------------------------------------------------------------------


def normalize(path: Path) -> list[str]:
    """Lines with surrounding whitespace removed and blank lines dropped."""
    text = path.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def golden_files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith("static/")
    )


def test_golden_output(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy, articles=True)
    shutil.rmtree(site / "static")  # theme assets are copied verbatim; not part of the golden
    if update_golden():  # refused under CI
        shutil.rmtree(EXPECTED, ignore_errors=True)
        shutil.copytree(site, EXPECTED)
        pytest.skip("golden tree regenerated: review `git diff tests/fixtures/archive_expected`")
    assert golden_files(site) == golden_files(EXPECTED), "set of files differs from the golden"
    for name in golden_files(EXPECTED):
        assert normalize(site / name) == normalize(EXPECTED / name), f"{name} differs"


# -- pages ----------------------------------------------------------------------------------


def test_page_counts(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy)
    pages = html_files(site)
    home = 2  # latest + 2 earlier issues at page_size 1
    others = 4  # filter, search, about, 404
    expected = home + len(PUBLISHED) + SUMMARIES + 1 + ALL_TOPICS + 1 + ALL_TYPES + others
    assert len(pages) == expected
    assert len([p for p in pages if p.startswith("topics/") and p.count("/") == 2]) == ALL_TOPICS
    assert len([p for p in pages if p.startswith("types/") and p.count("/") == 2]) == ALL_TYPES
    assert "page/2/index.html" in pages
    assert not (site / "page/3").exists()
    for month in PUBLISHED:
        assert f"{month}/index.html" in pages
    assert not (site / "2026-08").exists()
    assert (site / MARKER).exists()


def test_summary_page_has_everything(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy)
    soup = bs4.BeautifulSoup(
        (site / "2026-06/alliance-repair/index.html").read_text(), "html.parser"
    )
    assert soup.html["lang"] == "en"
    assert soup.h1.get_text(strip=True) == "Repairing Ruptures Predicts Better Outcomes"
    doi = soup.find("a", href="https://doi.org/10.5555/example.2025.003")
    assert doi is not None
    assert "Practice Research Example" in soup.find(class_="citation").get_text()
    assert soup.find("a", href="/types/naturalistic-practice-based-study/")
    assert soup.find("a", href="/topics/alliance-and-therapeutic-relationship/")
    assert soup.find(id="implications-heading").get_text() == "Practice Implications"
    assert soup.find("a", rel="prev")["href"] == "/2026-05/group-attendance/"
    assert soup.find("a", rel="next")["href"] == "/2026-06/therapist-empathy/"
    assert soup.find("article", attrs={"data-pagefind-body": True})
    assert soup.find("a", class_="skip-link")["href"] == "#main"


def test_topic_pages_newest_first_with_counts(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy)
    soup = bs4.BeautifulSoup(
        (site / "topics/group-psychotherapy/index.html").read_text(), "html.parser"
    )
    titles = [a.get_text() for a in soup.select(".card-title a")]
    assert titles == [
        "Group and Individual Formats Work Equally Well for Depression",
        "Pre-Group Preparation Improves Attendance",
    ]
    assert "2 summaries" in soup.find(class_="lead").get_text()
    index = bs4.BeautifulSoup((site / "topics/index.html").read_text(), "html.parser")
    row = index.main.find("a", href="/topics/group-psychotherapy/").parent
    assert row.find(class_="count").get_text(" ", strip=True) == "2 summaries"


def test_filter_page_lists_every_summary_with_data(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy)
    soup = bs4.BeautifulSoup((site / "filter/index.html").read_text(), "html.parser")
    items = soup.select("#filter-list > li")
    assert len(items) == SUMMARIES
    first = items[0]
    assert first["data-type"] == "randomized-controlled-trial"
    assert "long-term-outcomes" in first["data-topics"].split()
    form = soup.find("form", id="filter-form")
    assert form["method"] == "get"
    assert len(form.find_all("input", attrs={"name": "topic"})) == TOPICS
    assert len(form.find_all("input", attrs={"name": "type"})) == TYPES


def test_subscribe_form_hands_the_choices_to_the_web_app(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy)
    soup = bs4.BeautifulSoup((site / "about/index.html").read_text(), "html.parser")
    form = soup.find("form", class_="subscribe-form")
    assert form["action"] == "https://news.example.org/subscribe"
    assert form["method"] == "get"  # the web app shows them filled in, with its CSRF token
    assert form.find("input", attrs={"name": "email", "type": "email"})
    assert form.find("input", attrs={"name": "name"})
    modes = form.find_all("input", attrs={"name": "topic_mode", "type": "radio"})
    assert [(m["value"], m.has_attr("checked")) for m in modes] == [("all", True), ("some", False)]
    topics = form.find_all("input", attrs={"name": "topics", "type": "checkbox"})
    assert len(topics) == len(taxonomy.topics)
    assert topics[0]["value"] == taxonomy.topics.terms[0].slug


# -- links, feeds, sitemap ------------------------------------------------------------------


def crawl(site: Path, base_path: str, site_url: str) -> list[str]:
    """Every internal link of every page that does not resolve to a file (or an id)."""
    broken = []
    for relative in html_files(site):
        soup = bs4.BeautifulSoup((site / relative).read_text(), "html.parser")
        ids = {tag["id"] for tag in soup.find_all(id=True)}
        refs = [(tag.name, tag.get("href")) for tag in soup.find_all(["a", "link"])]
        refs += [
            (tag.name, tag.get("src"))
            for tag in soup.find_all("script")
            if tag.get("type") != "application/ld+json"  # a data block, no link
        ]
        refs += [
            ("form", tag.get("action"))
            for tag in soup.find_all("form")
            if tag.get("method", "get").lower() == "get"
        ]
        for name, ref in refs:
            if ref and urlsplit(ref).path == "/subscribe":
                continue  # the web app's page, on the same host but not part of the site
            if not ref:
                broken.append(f"{relative}: <{name}> without a link")
                continue
            if ref.startswith("#"):
                if ref[1:] not in ids:
                    broken.append(f"{relative}: {ref} (no such id)")
                continue
            if ref.startswith(site_url):
                ref = base_path + ref[len(site_url) :]
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc:
                continue  # external: DOI, the web app
            path = parts.path
            if not path.startswith(base_path):
                broken.append(f"{relative}: {ref} is outside {base_path}")
                continue
            local = path[len(base_path) :]
            target = site / (local + "index.html" if local == "" or local.endswith("/") else local)
            if not target.is_file():
                broken.append(f"{relative}: {ref}")
    return broken


def test_every_internal_link_resolves(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy, articles=True)  # the downloads too
    assert crawl(site, "/", "https://news.example.org/") == []


def test_site_under_a_sub_path(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy, articles=True, archive_options={"base_path": "archive"})
    assert crawl(site, "/archive/", "https://news.example.org/archive/") == []
    index = (site / "index.html").read_text()
    assert 'href="/archive/static/archive.css"' in index
    assert 'href="/2026' not in index
    locs = sitemap_locs(site)
    assert all(loc.startswith("https://news.example.org/archive/") for loc in locs)
    assert (
        "Sitemap: https://news.example.org/archive/sitemap.xml" in (site / "robots.txt").read_text()
    )


def test_configured_site_url_wins(tmp_path, taxonomy):
    site = build(
        tmp_path,
        taxonomy,
        archive_options={"base_path": "/", "site_url": "https://digest.example.com"},
    )
    assert sitemap_locs(site)[0] == "https://digest.example.com/"
    feed = feedparser.parse((site / "feeds/atom.xml").read_bytes())
    assert feed.entries[0].link == "https://digest.example.com/2026-07/cbt-long-term/"


def test_main_feed_lists_every_published_summary(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy)
    feed = feedparser.parse((site / "feeds/atom.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.feed.title == "Test Digest"
    titles = [entry.title for entry in feed.entries]
    assert len(titles) == SUMMARIES
    assert titles[0] == "CBT Gains for Depression Last Two Years"  # newest month, first in order
    assert "Supervision Focused on Outcomes" not in titles  # the unsent draft
    first = feed.entries[0]
    assert first.link == "https://news.example.org/2026-07/cbt-long-term/"
    assert first.published.startswith("2026-07-01")
    assert "Practice Implications" in first.content[0].value
    assert {tag.term for tag in first.tags} >= {"long-term-outcomes"}


def test_one_feed_per_topic(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy)
    feeds = sorted((site / "feeds/topics").glob("*.xml"))
    assert len(feeds) == ALL_TOPICS  # an empty one for a topic without summaries
    feed = feedparser.parse((site / "feeds/topics/group-psychotherapy.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert [entry.title for entry in feed.entries] == [
        "Group and Individual Formats Work Equally Well for Depression",
        "Pre-Group Preparation Improves Attendance",
    ]
    topic_page = (site / "topics/group-psychotherapy/index.html").read_text()
    assert 'href="/feeds/topics/group-psychotherapy.xml"' in topic_page


def sitemap_locs(site: Path) -> list[str]:
    tree = ET.parse(site / "sitemap.xml")
    namespace = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    return [loc.text for loc in tree.getroot().findall("s:url/s:loc", namespace)]


def test_sitemap_lists_every_page(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy)
    pages = {"https://news.example.org/" + page_url(p) for p in html_files(site) if p != "404.html"}
    locs = sitemap_locs(site)
    assert len(locs) == len(set(locs))
    assert set(locs) == pages
    robots = (site / "robots.txt").read_text()
    assert "Sitemap: https://news.example.org/sitemap.xml" in robots
    assert "Page not found" in (site / "404.html").read_text()


# -- publishing rules -----------------------------------------------------------------------


def months_in(site: Path) -> list[str]:
    return sorted(p.name for p in site.iterdir() if re.fullmatch(r"\d{4}-\d\d", p.name))


def test_only_sent_or_public_months_are_published(tmp_path, taxonomy):
    assert months_in(build(tmp_path, taxonomy, "a", sent=set())) == ["2026-07"]
    assert months_in(build(tmp_path, taxonomy, "b", sent={"2026-05"})) == ["2026-05", "2026-07"]
    everything = build(tmp_path, taxonomy, "c", sent=set(), include_unsent=True)
    assert months_in(everything) == ["2026-05", "2026-06", "2026-07", "2026-08"]


def test_sent_months_come_from_campaigns_and_deliveries(tmp_path):
    settings = archive_settings(tmp_path)
    engine = db.make_engine(settings.database.url)
    try:
        assert archive.sent_months(engine) == set()  # no schema yet: nothing was sent
        db.upgrade(engine)
        with db.transaction(engine) as session:
            done = models.Campaign(month="2026-05", subject="May", status=models.DONE)
            running = models.Campaign(month="2026-06", subject="June", status=models.RUNNING)
            planned = models.Campaign(month="2026-08", subject="Aug", status=models.PLANNED)
            session.add_all([done, running, planned])
            session.flush()
            session.add_all(
                [
                    models.Delivery(
                        campaign_id=running.id, email="a@example.org", variant="x", status="sent"
                    ),
                    models.Delivery(
                        campaign_id=planned.id, email="b@example.org", variant="x", status="queued"
                    ),
                    models.Delivery(
                        campaign_id=planned.id, email="c@example.org", variant="x", status="failed"
                    ),
                ]
            )
        assert archive.sent_months(engine) == {"2026-05", "2026-06"}
    finally:
        engine.dispose()


def test_cli_build_publishes_what_the_database_says(tmp_path, runner):
    config = write_config(
        tmp_path,
        content={"dir": str(CONTENT)},
        archive={"dir": "public", "page_size": 5},
    )
    result = runner.invoke(main, ["--config", str(config), "archive", "build", "--no-search"])
    assert result.exit_code == 0, result.output
    assert "no database yet" in result.output
    assert "not published (never sent, not public): 2026-05, 2026-06, 2026-08" in result.output
    assert "preview: newsletter archive serve" in result.output
    assert months_in(tmp_path / "public") == ["2026-07"]

    engine = db.make_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")
    db.upgrade(engine)
    with db.transaction(engine) as session:
        session.add(models.Campaign(month="2026-05", subject="May", status=models.DONE))
    engine.dispose()
    result = runner.invoke(main, ["--config", str(config), "archive", "build", "--no-search"])
    assert result.exit_code == 0, result.output
    assert months_in(tmp_path / "public") == ["2026-05", "2026-07"]
    assert "wrote 56 pages" in result.output  # 36 topic and 6 type pages among them

    out = tmp_path / "preview"
    args = [
        "--config",
        str(config),
        "archive",
        "build",
        str(out),
        "--include-unsent",
        "--no-search",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert months_in(out) == ["2026-05", "2026-06", "2026-07", "2026-08"]
    assert "not published" not in result.output


def broken_content(tmp_path: Path) -> Path:
    """A copy of the archive content whose unsent draft (2026-08) is broken twice over."""
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    draft = content / "2026-08"
    (draft / "01-draft-supervision.md").write_text("---\ntitle: [half\n---\n", encoding="utf-8")
    (draft / "02-unfinished.md").write_text("---\ntitle: TODO\n---\n", encoding="utf-8")
    return content


def test_a_broken_unsent_draft_does_not_block_the_archive(tmp_path, runner):
    content = broken_content(tmp_path)
    config = write_config(tmp_path, content={"dir": str(content)}, archive={"dir": "public"})
    result = runner.invoke(main, ["--config", str(config), "archive", "build", "--no-search"])
    assert result.exit_code == 0, result.output
    assert months_in(tmp_path / "public") == ["2026-07"]
    assert (
        "not published (never sent, not public): 2026-05, 2026-06, 2026-08; these were not read"
        in (result.output)
    )


def test_a_broken_published_month_still_stops_the_build_with_every_problem(tmp_path, taxonomy):
    content = broken_content(tmp_path)
    settings = archive_settings(tmp_path)
    settings.content.dir = content
    with pytest.raises(ContentProblems) as caught:
        archive.build_site(settings, taxonomy, tmp_path / "site", sent={"2026-08"}, search=False)
    assert [(Path(p.path).name, p.field) for p in caught.value.problems] == [
        ("01-draft-supervision.md", None),
        ("02-unfinished.md", "topics"),
        ("02-unfinished.md", "research_type"),
        ("02-unfinished.md", "Practice Implications"),
    ]
    assert not (tmp_path / "site").exists()
    with pytest.raises(ContentProblems):  # a preview of every month reads the draft too
        archive.build_site(settings, taxonomy, tmp_path / "site", include_unsent=True, search=False)


def test_an_unsent_month_with_a_broken_issue_md_is_left_out_with_a_warning(tmp_path, runner):
    content = broken_content(tmp_path)
    (content / "2026-08" / "issue.md").write_text("---\npublic: [true\n---\n", encoding="utf-8")
    (content / "2026-07" / "01-cbt-long-term.md").write_text("broken\n", encoding="utf-8")
    config = write_config(tmp_path, content={"dir": str(content)}, archive={"dir": "public"})
    result = runner.invoke(main, ["--config", str(config), "archive", "build", "--no-search"])
    # 2026-07 is public: true, so it is published, and its broken summary stops the build.
    assert result.exit_code == 1
    assert "2026-07/01-cbt-long-term.md: must start with YAML front matter" in result.output
    shutil.copy(CONTENT / "2026-07" / "01-cbt-long-term.md", content / "2026-07")
    result = runner.invoke(main, ["--config", str(config), "archive", "build", "--no-search"])
    assert result.exit_code == 0, result.output
    assert months_in(tmp_path / "public") == ["2026-07"]
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert warning.startswith(
        "warning: 2026-08 is not published: its issue.md (which may say `public: true`) cannot "
        f"be read: {content / '2026-08' / 'issue.md'}: line 3: invalid YAML front matter"
    )


# -- writer ---------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_failed_build_leaves_the_old_site(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy)
    before = snapshot(site)
    broken = tmp_path / "theme"
    broken.mkdir()
    (broken / "summary.html").write_text(
        '{% extends "base.html" %}{% block content %}{{ no_such.x }}{% endblock %}'
    )
    with pytest.raises(ArchiveError, match=r"summary\.html"):
        build(
            tmp_path,
            taxonomy,
            archive_options={"templates_dir": str(broken)},
            sent=SENT | {"2026-08"},
        )
    assert snapshot(site) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "theme"]  # no temp folders


def test_failing_search_index_leaves_the_old_site(tmp_path, taxonomy, monkeypatch):
    site = build(tmp_path, taxonomy)
    before = snapshot(site)

    def fail(folder: Path, language: str = "en") -> None:
        (folder / "pagefind").mkdir()
        raise ArchiveError("Pagefind failed: simulated")

    monkeypatch.setattr(search, "available", lambda: True)
    monkeypatch.setattr(search, "index_site", fail)
    with pytest.raises(ArchiveError, match="simulated"):
        build(tmp_path, taxonomy, search=True, include_unsent=True)
    assert snapshot(site) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_successful_rebuild_replaces_the_site(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy)
    (site / "stale.html").write_text("old")
    build(tmp_path, taxonomy, include_unsent=True)
    assert not (site / "stale.html").exists()
    assert (site / "2026-08/index.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_writer_refuses_to_replace_a_folder_it_did_not_build(tmp_path, taxonomy):
    precious = tmp_path / "site"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(ArchiveError, match="refusing to replace"):
        build(tmp_path, taxonomy)
    assert (precious / "thesis.tex").read_text() == "years of work"
    with Writer(tmp_path / "other") as writer, pytest.raises(ArchiveError, match="outside"):
        writer.write("../escape.txt", "x")
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize("out", ["/proc/x", "{tmp}/a-file/site"])
def test_build_where_nothing_can_be_written_is_one_line(tmp_path, runner, out):
    (tmp_path / "a-file").write_text("not a folder")
    out = out.format(tmp=tmp_path)
    config = write_config(tmp_path, content={"dir": str(CONTENT)})
    args = ["--config", str(config), "archive", "build", out, "--include-unsent", "--no-search"]
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # no traceback
    [line] = result.output.splitlines()
    assert line.startswith(f"Error: {out}: ")
    assert "cannot create the site folder" in line or "a-file is a file, not a folder" in line


# -- theme ----------------------------------------------------------------------------------


def test_override_template_extends_the_default(tmp_path, taxonomy):
    theme = tmp_path / "theme"
    (theme / "static").mkdir(parents=True)
    (theme / "summary.html").write_text(
        '{% extends "default/summary.html" %}'
        "{% block implications %}{{ super() }}"
        '<p class="local-note">Discuss at the case conference.</p>{% endblock %}'
    )
    (theme / "static/archive.css").write_text("body { color: black; }\n")
    site = build(tmp_path, taxonomy, archive_options={"templates_dir": str(theme)})
    page = (site / "2026-05/group-attendance/index.html").read_text()
    assert "Discuss at the case conference." in page
    assert "Practice Implications" in page
    assert (site / "static/archive.css").read_text() == "body { color: black; }\n"
    assert (site / "static/filter.js").exists()  # the rest of the built-in assets


# -- small pure pieces ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "/"), ("/", "/"), ("archive", "/archive/"), ("/a/b/", "/a/b/"), ("a//b", "/a/b/")],
)
def test_normalize_base_path(value, expected):
    assert normalize_base_path(value) == expected


def test_teaser_cuts_at_a_word():
    text = "<p>" + "word " * 100 + "</p><p>second</p>"
    result = teaser(text, 50)
    assert result.endswith("…") and len(result) <= 51
    assert teaser("<p>Short &amp; <em>sweet</em>.</p>") == "Short & sweet."


def test_empty_archive_builds(tmp_path, taxonomy):
    settings = archive_settings(tmp_path)
    site = generate([], taxonomy, site_info(settings))
    assert [page.path for page in site.pages][:1] == [""]
    result = archive.write_site(site, tmp_path / "site", None, search=False)
    assert "No issues have been published yet" in (result.out / "index.html").read_text()


# -- preview server -------------------------------------------------------------------------


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def test_preview_server_honours_base_path(tmp_path, taxonomy):
    site = build(tmp_path, taxonomy, archive_options={"base_path": "/archive/"})
    server = make_server(site, "/archive/", port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, body = fetch(root + "/archive/")
        assert status == 200 and "Latest issue" in body
        assert fetch(root + "/archive")[0] == 200  # redirected to /archive/
        assert fetch(root + "/archive/2026-06/alliance-repair/")[0] == 200
        status, body = fetch(root + "/archive/no/such/page/")
        assert status == 404 and "Page not found" in body
        assert fetch(root + "/2026-06/")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_cli_serve_needs_a_built_site(tmp_path, runner):
    config = write_config(tmp_path, archive={"dir": "nothing"})
    (tmp_path / "nothing").mkdir()
    result = runner.invoke(main, ["--config", str(config), "archive", "serve"])
    assert result.exit_code == 1
    assert "run `newsletter archive build` first" in result.output


@pytest.fixture
def built_config(tmp_path, taxonomy) -> Path:
    site = build(tmp_path, taxonomy)
    return write_config(tmp_path, content={"dir": str(CONTENT)}, archive={"dir": str(site)})


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        (["--port", "-1"], 2, "Invalid value for '--port': -1 is not in the range 0<=x<=65535"),
        (["--port", "99999"], 2, "'--port': 99999 is not in the range 0<=x<=65535"),
        (["--host", "256.1.1.1"], 1, "Error: host '256.1.1.1': not an IP address"),
        (["--host", "192.0.2.1"], 1, "Error: host '192.0.2.1': not an address of this machine"),
    ],
)
def test_cli_serve_with_a_bad_host_or_port_is_one_line(
    runner, built_config, options, code, message
):
    result = runner.invoke(main, ["--config", str(built_config), "archive", "serve", *options])
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert message in result.output.splitlines()[-1]


def test_cli_serve_on_a_busy_port_is_one_line(runner, built_config):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["--config", str(built_config), "archive", "serve", "--port", str(port)]
        result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.output == (
        f"Error: port {port} on 127.0.0.1 is in use by another program: choose another port\n"
    )
