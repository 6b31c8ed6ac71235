"""Browsing the archive: a page and a feed for every topic and type, the grouped topics index,
the side panel on every page, the search filters' markup, bylines, and the feeds' XSLT page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES
from outside_tools import require_module

from newsletter import archive
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import DEFAULT_TOPICS
from newsletter.content.taxonomy import TOPIC_GROUPS
from newsletter.content.taxonomy import default_taxonomy

bs4 = require_module("bs4", "needs beautifulsoup4")
feedparser = require_module("feedparser", "needs feedparser")
etree = require_module("lxml.etree", "needs lxml")

SENT = {"2026-05", "2026-06"}  # 2026-07 is public: true
SUMMARIES = 6


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """One build for the module (no search index: the browser tests cover search)."""
    root = tmp_path_factory.mktemp("browse")
    settings = settings_from_dict(
        {
            "newsletter": {"name": "Test & Digest", "base_url": "https://news.example.org"},
            "content": {"dir": str(FIXTURES / "archive_content"), "default_author": "The Editors"},
            "archive": {"page_size": 1, "base_path": "/archive/"},
            "database": {"url": "sqlite:///subscribers.db"},
        },
        root,
    )
    return archive.build_site(
        settings, default_taxonomy(), root / "site", sent=SENT, search=False
    ).out


def soup(site: Path, path: str):
    return bs4.BeautifulSoup((site / path).read_text(encoding="utf-8"), "html.parser")


def test_every_topic_of_the_taxonomy_has_a_page(site):
    for term in default_taxonomy().topics:
        assert (site / f"topics/{term.slug}/index.html").is_file(), term.slug
    empathy = soup(site, "topics/empathy/index.html")
    assert empathy.h1.get_text() == "Empathy"
    assert [a.get_text() for a in empathy.main.select(".card-title a")] == [
        "Clients Notice Empathy More Than Technique"
    ]


def test_a_topic_without_summaries_says_so_and_links_to_the_subscribe_page(site):
    page = soup(site, "topics/adherence/index.html")
    assert page.h1.get_text() == "Adherence"
    assert "No summary on this topic yet." in page.main.get_text()
    assert not page.main.select(".card")
    subscribe = page.main.find("a", string="Subscribe to Adherence")
    assert (
        subscribe["href"] == "https://news.example.org/subscribe?topic_mode=some&topics=adherence"
    )
    assert page.main.find("a", href="/archive/feeds/topics/adherence.xml")
    feed = feedparser.parse((site / "feeds/topics/adherence.xml").read_bytes())
    assert not feed.bozo and feed.entries == []
    assert feed.feed.title == "Test & Digest: Adherence"


def test_every_type_of_research_has_a_page_and_a_feed(site):
    for term in default_taxonomy().research_types:
        assert (site / f"types/{term.slug}/index.html").is_file(), term.slug
        assert (site / f"feeds/types/{term.slug}.xml").is_file(), term.slug
    feed = feedparser.parse((site / "feeds/types/meta-analysis.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert [entry.title for entry in feed.entries] == [
        "Group and Individual Formats Work Equally Well for Depression",
        "Session-by-Session Feedback Halves Deterioration",
    ]
    assert feed.entries[0].link == "https://news.example.org/archive/2026-07/group-vs-individual/"
    page = soup(site, "types/meta-analysis/index.html")
    assert page.head.find("link", rel="alternate", href="/archive/feeds/types/meta-analysis.xml")
    empty = soup(site, "types/review/index.html")
    assert "No summary of this type of research yet." in empty.main.get_text()


def test_topics_index_is_grouped_like_the_picker_with_all_topics_and_counts(site):
    page = soup(site, "topics/index.html")
    main = page.main
    assert [h.get_text() for h in main.find_all("h2")] == [*TOPIC_GROUPS, "Types of research"]
    lists = main.select("ul.term-list")
    first = lists[0].find_all("li")
    assert len(first) == 1 and first[0].a.get_text() == "All topics"
    assert first[0].a["href"] == "/archive/filter/"
    assert first[0].find(class_="count").get_text(" ", strip=True) == f"{SUMMARIES} summaries"
    topic_rows = [li for ul in lists[1:-1] for li in ul.find_all("li")]
    assert sorted(li.a.get_text() for li in topic_rows) == sorted(DEFAULT_TOPICS)
    counts = {
        li.a.get_text(): li.find(class_="count").get_text(" ", strip=True) for li in topic_rows
    }
    assert counts["Group Psychotherapy"] == "2 summaries"
    assert counts["Empathy"] == "1 summary"
    assert counts["Adherence"] == "0 summaries"


def panel_of(page):
    panel = page.find("aside", class_="side-panel")
    groups = panel.find_all("details")
    return panel, {group.summary.get_text(): group for group in groups}


@pytest.mark.parametrize(
    "path", ["index.html", "2026-06/therapist-empathy/index.html", "search/index.html", "404.html"]
)
def test_every_page_has_the_side_panel(site, path):
    page = soup(site, path)
    panel, groups = panel_of(page)
    assert list(groups) == ["Topics", "Type of research", "Issues by month"]
    assert all(group.has_attr("open") for group in groups.values())  # open without JS
    topics = [a.get_text() for a in groups["Topics"].find_all("a")]
    assert topics == ["All topics", *DEFAULT_TOPICS]
    types = [a.get_text() for a in groups["Type of research"].find_all("a")]
    assert types == [term.label for term in default_taxonomy().research_types]
    assert panel.find_next("main") is not None  # before the page: a top panel on phones


def test_the_month_year_index_lists_every_published_issue(site):
    _, groups = panel_of(soup(site, "index.html"))
    years = groups["Issues by month"].select(".panel-years > li")
    assert [y.find(class_="panel-year").get_text() for y in years] == ["2026"]
    months = [(a.get_text(), a["href"]) for a in years[0].find_all("a")]
    assert months == [  # the year is there for screen readers, which read links out of context
        ("July 2026", "/archive/2026-07/"),
        ("June 2026", "/archive/2026-06/"),
        ("May 2026", "/archive/2026-05/"),
    ]


def test_the_panel_marks_the_current_page(site):
    page = soup(site, "topics/empathy/index.html")
    _, groups = panel_of(page)
    current = [a.get_text() for a in groups["Topics"].find_all("a", attrs={"aria-current": True})]
    assert current == ["Empathy"]
    home = soup(site, "index.html")
    assert not home.find("aside").find_all(attrs={"aria-current": True})


def test_summary_pages_carry_the_pagefind_filters_and_index_the_names(site):
    page = soup(site, "2026-06/therapist-empathy/index.html")
    body = page.find(attrs={"data-pagefind-body": True})
    types = [t.get_text() for t in body.find_all(attrs={"data-pagefind-filter": "type"})]
    assert types == ["Qualitative study"]
    topics = [t.get_text() for t in body.find_all(attrs={"data-pagefind-filter": "topic"})]
    assert topics == ["Empathy", "Therapist Factors", "Alliance and Therapeutic Relationship"]
    for tag in body.find_all(attrs={"data-pagefind-filter": True}):  # indexed, not ignored
        assert not tag.find_parent(attrs={"data-pagefind-ignore": True})
    search = soup(site, "search/index.html")
    options = [o["value"] for o in search.find("select", id="search-type").find_all("option")]
    assert options == [
        "",
        "Meta-analysis",
        "Randomized controlled trial",
        "Qualitative study",
        "Naturalistic/practice-based study",
    ]  # only types that have summaries


def test_byline_from_front_matter_or_the_default_author(site):
    own = soup(site, "2026-07/cbt-long-term/index.html")
    assert own.main.find(class_="byline").get_text() == "Dr. Ada Example"
    default = soup(site, "2026-06/therapist-empathy/index.html")
    assert default.main.find(class_="byline").get_text() == "The Editors"
    issue = soup(site, "2026-07/index.html")
    assert [b.get_text() for b in issue.main.select(".byline")] == [
        "Dr. Ada Example",
        "The Editors",
    ]
    data = json.loads(own.find("script", type="application/ld+json").string)
    assert data["author"] == {"@type": "Person", "name": "Dr. Ada Example"}
    assert data["publisher"]["name"] == "Test & Digest"
    feed = feedparser.parse((site / "feeds/atom.xml").read_bytes())
    authors = {entry.title: entry.author for entry in feed.entries}
    assert authors["CBT Gains for Depression Last Two Years"] == "Dr. Ada Example"
    assert authors["Clients Notice Empathy More Than Technique"] == "The Editors"


def test_feeds_name_their_xslt_page_which_turns_them_into_html(site):
    raw = (site / "feeds/atom.xml").read_bytes()
    lines = raw.splitlines()
    assert lines[0].startswith(b"<?xml version")
    assert lines[1] == b'<?xml-stylesheet type="text/xsl" href="/archive/feeds/feed.xsl"?>'
    assert not feedparser.parse(raw).bozo  # feed readers still read it
    transform = etree.XSLT(etree.parse(str(site / "feeds/feed.xsl")))
    html = str(transform(etree.fromstring(raw)))
    page = bs4.BeautifulSoup(html, "html.parser")
    assert page.h1.get_text() == "Test & Digest"
    assert page.find("code").get_text() == "https://news.example.org/archive/feeds/atom.xml"
    links = [a["href"] for a in page.select("ol.results h2 a")]
    assert len(links) == SUMMARIES
    assert links[0] == "https://news.example.org/archive/2026-07/cbt-long-term/"
    assert page.find("link", rel="stylesheet")["href"] == "/archive/static/archive.css"
    empty = transform(etree.parse(str(site / "feeds/topics/adherence.xml")))
    assert "No summary in this feed yet." in str(empty)


def test_the_shared_look_is_copied_into_the_site(site):
    page = soup(site, "index.html")
    sheets = [link["href"] for link in page.head.find_all("link", rel="stylesheet")]
    assert sheets == ["/archive/static/archive.css", "/archive/static/look.css"]
    assert page.head.find("link", rel="icon")["href"] == "/archive/static/favicon.svg"
    shared = FIXTURES.parent.parent / "templates" / "shared" / "static"
    for name in ("look.css", "favicon.svg"):
        assert (site / "static" / name).read_bytes() == (shared / name).read_bytes()
    assert (
        page.find("header", class_="site-header").find("a", class_="brand")["href"] == "/archive/"
    )
