"""Atom feeds (feedgen): every summary, plus one feed per topic. Pure: returns bytes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from feedgen.ext.base import BaseEntryExtension
from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator

from newsletter.archive.generator import Entry
from newsletter.archive.generator import File
from newsletter.archive.generator import SiteInfo
from newsletter.content.taxonomy import Term

FEED_PATH = "feeds/atom.xml"
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


ATOM_LINK = "{http://www.w3.org/2005/Atom}link"


class _EntryLinks(BaseEntryExtension):
    """Puts back the `rel`, `type` and `title` of an entry's links, which feedgen 1.0.0 drops
    (lkiesow/python-feedgen#135): without them the DOI link would be a second `alternate`.
    Drop it (and `_link`) once a fixed feedgen is released."""

    def __init__(self) -> None:
        self.attributes: dict[str, dict[str, str]] = {}  # href -> attributes

    def extend_atom(self, entry: Any) -> Any:
        for element in [*entry.iter(ATOM_LINK), *entry.iter("link")]:
            element.attrib.update(self.attributes.get(element.get("href"), {}))
        return entry


def _link(item: Any, href: str, **attributes: str) -> None:
    item.link(href=href, **attributes)
    item.links.attributes[href] = attributes


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
    feed.register_extension("links", BaseExtension, _EntryLinks, atom=True, rss=False)
    for entry in entries:
        item = feed.add_entry(order="append")
        item.id(info.absolute(entry.path))
        item.title(entry.title)
        _link(item, info.absolute(entry.path), rel="alternate", type="text/html")
        if entry.doi_url:  # the summarized article
            _link(item, entry.doi_url, rel="related", title=f"doi:{entry.doi}")
        item.published(entry.date)
        item.updated(entry.date)
        item.summary(entry.teaser)
        item.content(_content_html(entry), type="html")
        for topic in entry.topics:
            item.category(term=topic.slug, label=topic.label)
    return feed.atom_str(pretty=True)


def _content_html(entry: Entry) -> str:
    parts = []
    citation = entry.citation_html  # escaped, with the DOI link
    if citation:
        parts.append(f"<p>{citation}</p>")
    parts.append(entry.summary_html)
    parts.append("<h2>Practice Implications</h2>")
    parts.append(entry.implications_html)
    return "\n".join(parts)
