"""Read the posts of a feed file: RSS 2.0, Atom or a WordPress export (WXR).

feedparser reads all three: WXR is RSS 2.0 whose items carry WordPress's `wp:` elements, which
feedparser keeps as `wp_*` keys (`wp_post_type`, `wp_status`, `wp_post_date`, `wp_post_name`),
`content:encoded` as the entry's content and `<category domain=...>` as its tags. It is also
safe with untrusted XML (no external entities, no entity expansion beyond simple ones). It is
handed an open file, never a name: a string that looks like a URL would be fetched.
"""

from __future__ import annotations

import email.utils
import html
import warnings
import xml.sax
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import feedparser
from bs4 import BeautifulSoup
from bs4 import MarkupResemblesLocatorWarning
from bs4 import XMLParsedAsHTMLWarning

from newsletter.errors import ContentError

WXR_NAMESPACE = "wordpress.org/export/"
_KINDS = {"rss20": "RSS 2.0", "atom10": "Atom 1.0", "atom03": "Atom 0.3", "rss10": "RSS 1.0"}


@dataclass(frozen=True)
class Post:
    """One published post: what a summary file is made from."""

    title: str
    published: datetime  # as the blog wrote it (its own time zone), naive
    html: str
    terms: tuple[str, ...]  # its categories and tags (any taxonomy), in file order, each once
    name: str = ""  # the blog's own slug (WXR `wp:post_name`), '' when the feed has none
    link: str = ""
    position: int = 0  # its place in the file: the tie-break between posts of the same time


@dataclass(frozen=True)
class Skipped:
    """An item of the file that is not a published post (attachment, page, draft, ...)."""

    title: str
    reason: str


@dataclass(frozen=True)
class Feed:
    """A feed file read: its kind, its published posts and what was left out and why."""

    path: Path
    kind: str
    posts: tuple[Post, ...]
    skipped: tuple[Skipped, ...]
    warnings: tuple[str, ...] = ()


def read_feed(path: Path) -> Feed:
    """The posts of an RSS, Atom or WXR file; `ContentError` naming the file when it is none.

    Of a WordPress export only items of type `post` with status `publish` are posts: pages,
    attachments, menu items, drafts, private and trashed posts are listed in `skipped`.
    """
    path = Path(path)
    try:
        with path.open("rb") as stream:
            parsed = feedparser.parse(stream)
    except OSError as error:
        raise ContentError(path, f"cannot be read: {error.strerror or error}") from None
    if not parsed.get("version"):
        raise ContentError(path, "not an RSS, Atom or WordPress export (WXR) file" + _why(parsed))
    namespaces = parsed.get("namespaces", {}).values()
    wordpress = any(WXR_NAMESPACE in str(uri) for uri in namespaces)
    if wordpress:
        kind = f"WordPress export (WXR {parsed.feed.get('wp_wxr_version', '?')})"
    else:
        kind = _KINDS.get(parsed.version, parsed.version)
    warnings = []
    if parsed.get("bozo"):
        warnings.append(f"{path}: the XML is not well formed{_why(parsed)}: read leniently")
    posts: list[Post] = []
    skipped: list[Skipped] = []
    for position, entry in enumerate(parsed.entries):
        title = _plain(entry.get("title", "")) or "(untitled)"
        if wordpress:
            post_type = str(entry.get("wp_post_type", "post")).strip()
            status = str(entry.get("wp_status", "publish")).strip()
            if post_type != "post":
                skipped.append(Skipped(title, post_type or "no post type"))
                continue
            if status != "publish":
                skipped.append(Skipped(title, status or "no status"))
                continue
        published = _published(entry)
        if published is None:
            skipped.append(Skipped(title, "no date"))
            continue
        posts.append(
            Post(
                title=_plain(entry.get("title", "")),
                published=published,
                html=_body(entry),
                terms=_terms(entry),
                name=str(entry.get("wp_post_name", "")).strip(),
                link=str(entry.get("link", "")).strip(),
                position=position,
            )
        )
    return Feed(path, kind, tuple(posts), tuple(skipped), tuple(warnings))


def _why(parsed: Mapping[str, Any]) -> str:
    """' (XML: mismatched tag)' from feedparser's XML error, '' when there is none. Not its
    line: feedparser may have added an XML declaration to the text it parsed."""
    error = parsed.get("bozo_exception")
    if isinstance(error, xml.sax.SAXParseException):
        return f" (XML: {error.getMessage()})"
    return f" ({error})" if error else ""


def html_soup(text: str) -> BeautifulSoup:
    """A post's HTML (or title) parsed, without BeautifulSoup's warnings that a short text
    looks like a file name or URL or that HTML looks like XML: a title may well look so."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return BeautifulSoup(text, "html.parser")


def _plain(text: str) -> str:
    """A title as plain text: feeds may carry it as HTML (entities, even tags)."""
    return " ".join(html_soup(text).get_text().split())


def _body(entry: Mapping[str, Any]) -> str:
    """The post's HTML: `content:encoded` / Atom content, else the RSS description."""
    for detail in [*entry.get("content", []), entry.get("summary_detail")]:
        if detail and str(detail.get("value", "")).strip():
            value = str(detail["value"])
            return html.escape(value) if detail.get("type") == "text/plain" else value
    return ""


def _terms(entry: Mapping[str, Any]) -> tuple[str, ...]:
    terms: list[str] = []
    for tag in entry.get("tags", []):
        term = " ".join(str(tag.get("term") or tag.get("label") or "").split())
        if term and term not in terms:
            terms.append(term)
    return tuple(terms)


def _published(entry: Mapping[str, Any]) -> datetime | None:
    """When the post was published, in the blog's own time (so that a post of 31 March at
    11 pm stays in March): WXR's `wp:post_date`, else the feed's date as written, else
    feedparser's reading of it (UTC)."""
    wordpress_date = str(entry.get("wp_post_date", "")).strip()
    if wordpress_date and not wordpress_date.startswith("0000"):
        try:
            return datetime.strptime(wordpress_date, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            pass
    for key in ("published", "updated"):
        raw = str(entry.get(key, "")).strip()
        if not raw:
            continue
        for reader in (email.utils.parsedate_to_datetime, datetime.fromisoformat):
            try:
                return reader(raw).replace(tzinfo=None)
            except (TypeError, ValueError, IndexError):
                continue
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            return datetime(*parsed[:6])
    return None
