"""Generate the archive's pages from published issues: pure, no file or network I/O.

`generate` turns issues + taxonomy + `SiteInfo` into a list of `Page` (a template name and its
context, rendered by the writer) and `File` (ready bytes: feeds, sitemap, robots.txt). Every URL
is rooted at `SiteInfo.base_path`, so the same build works at a domain root or under `/archive/`;
absolute URLs (feeds, sitemap, canonical links) use `SiteInfo.site_url`.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from xml.sax.saxutils import escape

from markupsafe import Markup

from newsletter.archive import browse
from newsletter.archive import references
from newsletter.archive import scholar
from newsletter.archive.browse import Link
from newsletter.config import Settings
from newsletter.config import normalize_base_path
from newsletter.content.model import Issue
from newsletter.content.model import Summary
from newsletter.content.model import markdown_to_html
from newsletter.content.model import parse_month
from newsletter.content.taxonomy import Taxonomy
from newsletter.render.citation import citation_html

TEASER_CHARS = 220


@dataclass(frozen=True)
class SiteInfo:
    """The settings the generator needs, normalized."""

    name: str
    language: str
    base_path: str  # always starts and ends with "/"
    site_url: str  # absolute, ends with "/"
    subscribe_url: str
    page_size: int = 12
    default_author: str = ""  # the byline of summaries without `author:`

    def url(self, path: str = "") -> str:
        """A rooted URL for a path relative to the site root ('' is the home page)."""
        return self.base_path + path

    def absolute(self, path: str = "") -> str:
        """An absolute URL for a path relative to the site root."""
        return self.site_url + path


def site_info(settings: Settings) -> SiteInfo:
    """SiteInfo from settings: `[archive] base_path/site_url/page_size`, `[newsletter]`."""
    archive = settings.archive
    base_path = normalize_base_path(archive.base_path)
    base_url = settings.newsletter.base_url.rstrip("/")
    site_url = settings.archive_url()
    return SiteInfo(
        name=settings.newsletter.name,
        language=settings.newsletter.language or "en",
        base_path=base_path,
        site_url=site_url,
        subscribe_url=base_url + "/subscribe",
        page_size=archive.page_size,
        default_author=settings.content.default_author,
    )


@dataclass
class Entry:
    """One summary as the site shows it (HTML rendered once, URLs resolved)."""

    summary: Summary
    path: str
    url: str
    issue: Link
    topics: tuple[Link, ...]
    research_type: Link
    summary_html: str
    implications_html: str
    teaser: str
    date: dt.datetime
    previous: Link | None = None
    next: Link | None = None
    meta_tags: list[tuple[str, str]] = field(default_factory=list)  # Highwire citation_*
    json_ld: dict[str, Any] = field(default_factory=dict)  # schema.org, for `tojson`
    downloads: list[references.Download] = field(default_factory=list)  # "Cite the article"
    cite_summary: scholar.Citation | None = None  # "Cite this summary"
    author: str = ""  # the byline ('' = none)

    @property
    def title(self) -> str:
        return self.summary.title

    @property
    def month(self) -> str:
        return self.summary.month

    @property
    def month_label(self) -> str:
        return self.issue.label

    @property
    def citation(self) -> str:
        return self.summary.citation

    @functools.cached_property
    def citation_html(self) -> Markup:
        """The article's citation with its DOI link, as HTML ('' when nothing is known); a
        page, its issue's page and the feeds each show it."""
        return citation_html(self.summary)

    @property
    def doi(self) -> str:
        return scholar.doi_of(self.summary)

    @property
    def doi_url(self) -> str:
        return scholar.doi_url(self.doi)

    @property
    def topic_slugs(self) -> str:
        return " ".join(link.slug for link in self.topics)


@dataclass
class IssueView:
    """A month's issue as the site shows it."""

    issue: Issue
    path: str
    url: str
    entries: list[Entry]
    intro_html: str
    previous: Link | None = None
    next: Link | None = None

    @property
    def month(self) -> str:
        return self.issue.month

    @property
    def label(self) -> str:
        return self.issue.label

    @property
    def subject(self) -> str:
        return self.issue.subject if self.issue.has_custom_subject else ""


@dataclass(frozen=True)
class Page:
    """One HTML page: `path` is its URL path under the root ('' home, '2026-07/', '404.html')."""

    path: str
    template: str
    title: str
    context: dict = field(default_factory=dict)
    description: str = ""
    section: str = ""
    in_sitemap: bool = True

    @property
    def output(self) -> str:
        """The file to write, relative to the output folder."""
        return self.path + "index.html" if self.path == "" or self.path.endswith("/") else self.path


@dataclass(frozen=True)
class File:
    """A file whose bytes are already known (feed, sitemap, robots.txt)."""

    path: str
    data: bytes


@dataclass
class Site:
    """Everything the writer needs: pages to render and files to write."""

    info: SiteInfo
    pages: list[Page]
    files: list[File]
    issues: list[IssueView]
    entries: list[Entry]
    topics: list[Link]
    research_types: list[Link]
    panel: browse.SidePanel | None = None


def month_date(month: str) -> dt.datetime:
    """The first day of the month, midnight UTC: the publication date used in feeds."""
    year, number = parse_month(month)
    return dt.datetime(year, number, 1, tzinfo=dt.UTC)


_TAG = re.compile(r"<[^>]+>")


def teaser(summary_html: str, limit: int = TEASER_CHARS) -> str:
    """The first paragraph as plain text, cut at a word boundary near `limit` characters."""
    first = summary_html.split("</p>", 1)[0]
    text = " ".join(html.unescape(_TAG.sub("", first)).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:—–- ")
    return cut + "…"


_topic_path = browse.topic_path
_type_path = browse.type_path


def _issue_path(month: str) -> str:
    return f"{month}/"


def _summary_path(summary: Summary) -> str:
    return f"{summary.month}/{summary.slug}/"


def generate(issues: Sequence[Issue], taxonomy: Taxonomy, info: SiteInfo) -> Site:
    """Build every page and file of the site from the published issues (any order)."""
    ordered = sorted(issues, key=lambda issue: issue.month, reverse=True)
    views: list[IssueView] = []
    for issue in ordered:
        path = _issue_path(issue.month)
        issue_link = Link(issue.label, info.url(path), len(issue.summaries), issue.month)
        entries = [_entry(summary, issue_link, info) for summary in issue.summaries]
        views.append(IssueView(issue, path, info.url(path), entries, issue.intro_html))
    _link_neighbours(views)
    # Newest month first; within a month, reading order.
    entries = [entry for view in views for entry in view.entries]

    # Every term gets a page (and a feed), with or without summaries: no 404 for a topic.
    by_topic = browse.group_entries(entries, taxonomy.topics, lambda e: [t.slug for t in e.topics])
    by_type = browse.group_entries(
        entries, taxonomy.research_types, lambda e: [e.research_type.slug]
    )
    topic_links = [
        Link(term.label, info.url(_topic_path(term)), len(items), term.slug)
        for term, items in by_topic
    ]
    type_links = [
        Link(term.label, info.url(_type_path(term)), len(items), term.slug)
        for term, items in by_type
    ]
    every_topic = Link("All topics", info.url("filter/"), len(entries), "")  # no filter

    pages: list[Page] = []
    pages += _home_pages(views, info)
    for view in views:
        pages.append(
            Page(
                view.path,
                "issue.html",
                view.label,
                {"issue": view},
                description=view.subject or f"{info.name}: {view.label}",
                section="issues",
            )
        )
        for entry in view.entries:
            pages.append(
                Page(
                    entry.path,
                    "summary.html",
                    entry.title,
                    {"entry": entry},
                    description=entry.teaser,
                    section="issues",
                )
            )
    pages.append(
        Page(
            "topics/",
            "topics.html",
            "Topics",
            {
                "topics": topic_links,
                "groups": browse.topic_index(taxonomy, topic_links, every_topic),
                "research_types": type_links,
                "total": len(entries),
            },
            description=f"Every topic of {info.name}, with the number of summaries.",
            section="topics",
        )
    )
    for (term, items), link in zip(by_topic, topic_links, strict=True):
        pages.append(
            Page(
                _topic_path(term),
                "topic.html",
                term.label,
                {
                    "term": link,
                    "entries": items,
                    "feed_url": info.url(browse.topic_feed_path(term)),
                    "subscribe_url": f"{info.subscribe_url}?topic_mode=some&topics={term.slug}",
                },
                description=f"Summaries on {term.label}, newest first.",
                section="topics",
            )
        )
    pages.append(
        Page(
            "types/",
            "research_types.html",
            "Types of research",
            {"research_types": type_links, "total": len(entries)},
            description=f"Summaries in {info.name} by type of research.",
            section="types",
        )
    )
    for (term, items), link in zip(by_type, type_links, strict=True):
        pages.append(
            Page(
                _type_path(term),
                "research_type.html",
                term.label,
                {
                    "term": link,
                    "entries": items,
                    "feed_url": info.url(browse.type_feed_path(term)),
                },
                description=f"Summaries of {term.label.lower()} research, newest first.",
                section="types",
            )
        )
    pages.append(
        Page(
            "filter/",
            "filter.html",
            "Filter summaries",
            {  # only the terms that some summary has: ticking the others shows nothing
                "entries": entries,
                "topics": [link for link in topic_links if link.count],
                "research_types": [link for link in type_links if link.count],
            },
            description="Choose several topics and types of research at once.",
            section="filter",
        )
    )
    pages.append(
        Page(
            "search/",
            "search.html",
            "Search",
            {  # the filters: only terms that some summary has
                "topics": [link for link in topic_links if link.count],
                "research_types": [link for link in type_links if link.count],
            },
            description=f"Search every summary in {info.name}.",
            section="search",
        )
    )
    all_topics = [Link(term.label, "", 0, term.slug) for term in taxonomy.topics]
    pages.append(
        Page(
            "about/",
            "about.html",
            "About and subscribe",
            {"all_topics": all_topics, "issue_count": len(views), "entry_count": len(entries)},
            description=f"What {info.name} is, and how to receive it by email.",
            section="about",
        )
    )
    pages.append(Page("404.html", "404.html", "Page not found", {}, in_sitemap=False))
    pages.append(Page("feeds/feed.xsl", "feed.xsl", "Feed", {}, in_sitemap=False))

    from newsletter.archive.feeds import build_feeds

    files = build_feeds(entries, by_topic, by_type, info)
    files += [
        File(entry.path + name, data)
        for entry in entries
        for name, data in references.download_files(scholar.article_of(entry.summary)).items()
    ]
    files.append(File("sitemap.xml", sitemap(pages, info)))
    files.append(File("robots.txt", robots(info)))
    panel = browse.side_panel(every_topic, topic_links, type_links, views)
    return Site(info, pages, files, views, entries, topic_links, type_links, panel)


def _entry(summary: Summary, issue_link: Link, info: SiteInfo) -> Entry:
    summary_html = markdown_to_html(summary.summary_md)
    path = _summary_path(summary)
    author = summary.author or info.default_author
    facts = scholar.PageFacts(
        info.name, info.absolute(path), info.language, info.absolute(), author
    )
    return Entry(
        summary=summary,
        path=path,
        url=info.url(path),
        issue=issue_link,
        topics=tuple(Link(t.label, info.url(_topic_path(t)), 0, t.slug) for t in summary.topics),
        research_type=Link(
            summary.research_type.label,
            info.url(_type_path(summary.research_type)),
            0,
            summary.research_type.slug,
        ),
        summary_html=summary_html,
        implications_html=markdown_to_html(summary.implications_md),
        teaser=teaser(summary_html),
        date=month_date(summary.month),
        meta_tags=scholar.highwire_tags(summary),
        json_ld=scholar.json_ld(summary, facts),
        downloads=references.download_links(scholar.article_of(summary), info.url(path)),
        cite_summary=scholar.summary_citation(summary, facts),
        author=author,
    )


def _link_neighbours(views: list[IssueView]) -> None:
    """Previous = older, next = newer; for issues and across all summaries in reading order."""
    chronological = list(reversed(views))
    for older, newer in itertools.pairwise(chronological):
        newer.previous = Link(older.label, older.url)
        older.next = Link(newer.label, newer.url)
    sequence = [entry for view in chronological for entry in view.entries]
    for older_entry, newer_entry in itertools.pairwise(sequence):
        newer_entry.previous = Link(older_entry.title, older_entry.url)
        older_entry.next = Link(newer_entry.title, newer_entry.url)


def _home_pages(views: list[IssueView], info: SiteInfo) -> list[Page]:
    """Page 1 shows the latest issue, then earlier issues `page_size` at a time."""
    latest = views[0] if views else None
    earlier = views[1:]
    size = info.page_size
    count = max(1, math.ceil(len(earlier) / size))
    pages = []

    def page_path(number: int) -> str:
        return "" if number == 1 else f"page/{number}/"

    for number in range(1, count + 1):
        path = page_path(number)
        pagination = {
            "number": number,
            "count": count,
            "previous": info.url(page_path(number - 1)) if number > 1 else None,
            "next": info.url(page_path(number + 1)) if number < count else None,
        }
        pages.append(
            Page(
                path,
                "index.html",
                info.name if number == 1 else f"Earlier issues, page {number} of {count}",
                {
                    "latest": latest if number == 1 else None,
                    "issues": earlier[(number - 1) * size : number * size],
                    "pagination": pagination,
                },
                description=f"Every issue of {info.name}, newest first.",
                section="issues",
            )
        )
    return pages


def sitemap(pages: Sequence[Page], info: SiteInfo) -> bytes:
    """sitemap.xml listing every page meant for search engines."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    for page in pages:
        if page.in_sitemap:
            lines.append(f"  <url><loc>{escape(info.absolute(page.path))}</loc></url>")
    lines.append("</urlset>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def robots(info: SiteInfo) -> bytes:
    """robots.txt: everything may be crawled; where the sitemap is."""
    return (
        f"User-agent: *\nAllow: {info.base_path}\n\nSitemap: {info.absolute('sitemap.xml')}\n"
    ).encode()
