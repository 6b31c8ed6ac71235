"""Atom feeds (feedgen): every summary, plus one feed per topic and per type of research.
Pure: returns bytes. Each feed names an XSLT stylesheet (`static/feed.xsl`), so a browser that
opens it shows a readable page with the address to paste into a feed reader, not raw XML."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from feedgen.ext.base import BaseEntryExtension
from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator

from newsletter.archive.browse import topic_feed_path
from newsletter.archive.browse import topic_path
from newsletter.archive.browse import type_feed_path
from newsletter.archive.browse import type_path
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


def build_feeds(
    entries: Sequence[Entry],
    by_topic: Sequence[tuple[Term, Sequence[Entry]]],
    by_type: Sequence[tuple[Term, Sequence[Entry]]],
    info: SiteInfo,
) -> list[File]:
    """The main feed, one per topic and one per type of research (entries newest first). A
    term without summaries gets an empty feed: a reader can follow it before its first one."""
    files = [File(FEED_PATH, atom_feed(entries, info, FEED_PATH, info.name, ""))]
    for term, items in by_topic:
        path = topic_feed_path(term)
        title = f"{info.name}: {term.label}"
        files.append(File(path, atom_feed(items, info, path, title, topic_path(term))))
    for term, items in by_type:
        path = type_feed_path(term)
        title = f"{info.name}: {term.label}"
        files.append(File(path, atom_feed(items, info, path, title, type_path(term))))
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
        if entry.author:
            item.author({"name": entry.author})
        item.summary(entry.teaser)
        item.content(_content_html(entry), type="html")
        for topic in entry.topics:
            item.category(term=topic.slug, label=topic.label)
    return with_stylesheet(feed.atom_str(pretty=True), info.url(STYLESHEET))


STYLESHEET = "feeds/feed.xsl"  # a page of the theme (feed.xsl): it knows base_path


def with_stylesheet(document: bytes, href: str) -> bytes:
    """The feed with an `<?xml-stylesheet?>` instruction right after its XML declaration;
    feed readers ignore it, browsers that still run XSLT show the page it describes."""
    declaration, newline, rest = document.partition(b"\n")
    if not declaration.startswith(b"<?xml"):
        raise ValueError("feedgen wrote no XML declaration")
    instruction = f'<?xml-stylesheet type="text/xsl" href="{escape(href, {chr(34): "&quot;"})}"?>'
    return declaration + newline + instruction.encode() + b"\n" + rest


def _content_html(entry: Entry) -> str:
    parts = []
    citation = entry.citation_html  # escaped, with the DOI link
    if citation:
        parts.append(f"<p>{citation}</p>")
    parts.append(entry.summary_html)
    parts.append("<h2>Practice Implications</h2>")
    parts.append(entry.implications_html)
    return "\n".join(parts)
