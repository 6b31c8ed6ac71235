"""Atom feeds (feedgen): every summary, plus one feed per topic. Pure: returns bytes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape as _escape

from feedgen.feed import FeedGenerator

from newsletter.archive.generator import Entry
from newsletter.archive.generator import File
from newsletter.archive.generator import SiteInfo
from newsletter.content.taxonomy import Term

FEED_PATH = "feeds/atom.xml"
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def topic_feed_path(term: Term) -> str:
    return f"feeds/topics/{term.slug}.xml"


def build_feeds(
    entries: Sequence[Entry], by_topic: Sequence[tuple[Term, Sequence[Entry]]], info: SiteInfo
) -> list[File]:
    """The main feed and one per topic that has summaries (entries newest first)."""
    files = [File(FEED_PATH, atom_feed(entries, info, FEED_PATH, info.name, ""))]
    for term, items in by_topic:
        path = topic_feed_path(term)
        title = f"{info.name}: {term.label}"
        files.append(File(path, atom_feed(items, info, path, title, f"topics/{term.slug}/")))
    return files


def atom_feed(
    entries: Sequence[Entry], info: SiteInfo, path: str, title: str, page_path: str
) -> bytes:
    """One Atom document; `page_path` is the HTML page the feed mirrors."""
    feed = FeedGenerator()
    feed.id(info.absolute(path))
    feed.title(title)
    feed.subtitle(f"Research summaries for clinicians from {info.name}")
    feed.author({"name": info.name})
    feed.link(href=info.absolute(path), rel="self", type="application/atom+xml")
    feed.link(href=info.absolute(page_path), rel="alternate", type="text/html")
    feed.language(info.language)
    feed.generator("newsletter")
    feed.updated(max((entry.date for entry in entries), default=EPOCH))
    for entry in entries:
        item = feed.add_entry(order="append")
        item.id(info.absolute(entry.path))
        item.title(entry.title)
        item.link(href=info.absolute(entry.path), rel="alternate", type="text/html")
        item.published(entry.date)
        item.updated(entry.date)
        item.summary(entry.teaser)
        item.content(_content_html(entry), type="html")
        for topic in entry.topics:
            item.category(term=topic.slug, label=topic.label)
    return feed.atom_str(pretty=True)


def _content_html(entry: Entry) -> str:
    parts = []
    if entry.citation:
        parts.append(f"<p><em>{_escape(entry.citation)}</em></p>")
    if entry.doi_url:
        parts.append(f'<p><a href="{_escape(entry.doi_url)}">doi:{_escape(entry.doi)}</a></p>')
    parts.append(entry.summary_html)
    parts.append("<h2>Practice Implications</h2>")
    parts.append(entry.implications_html)
    return "\n".join(parts)
