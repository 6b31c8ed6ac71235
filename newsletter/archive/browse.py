"""The ways to browse the archive besides the home page: the side panel shown on every page
(topics, types of research, a month/year index of every issue), the topics index grouped like
the subscribe page's picker, and one page per topic and per type of research, including the
ones that no summary has yet (they say so instead of answering 404). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import Term
from newsletter.content.taxonomy import topic_groups

if TYPE_CHECKING:
    from newsletter.archive.generator import Entry
    from newsletter.archive.generator import IssueView


@dataclass(frozen=True)
class Link:
    """Something to link to: a label, a rooted URL, and a count where it helps."""

    label: str
    url: str
    count: int = 0
    slug: str = ""


@dataclass(frozen=True)
class Year:
    """One year of the month/year index: its issues newest first."""

    year: str
    months: tuple[Link, ...]


@dataclass(frozen=True)
class LinkGroup:
    """A labelled group of links (the topics index is grouped like the picker)."""

    label: str
    links: tuple[Link, ...]


@dataclass(frozen=True)
class SidePanel:
    """What the side panel (a top panel on phones) lists on every page."""

    all_topics: Link
    topics: tuple[Link, ...]
    research_types: tuple[Link, ...]
    years: tuple[Year, ...]


def topic_path(term: Term) -> str:
    return f"topics/{term.slug}/"


def type_path(term: Term) -> str:
    return f"types/{term.slug}/"


def topic_feed_path(term: Term) -> str:
    return f"feeds/topics/{term.slug}.xml"


def type_feed_path(term: Term) -> str:
    return f"feeds/types/{term.slug}.xml"


def group_entries(
    entries: Sequence[Entry], vocabulary: Iterable[Term], slugs_of: Callable[[Entry], list[str]]
) -> list[tuple[Term, list[Entry]]]:
    """(term, its entries newest first) for EVERY term of the vocabulary, in its order: a
    term without summaries still gets its page and its (empty) feed."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        for slug in slugs_of(entry):
            groups.setdefault(slug, []).append(entry)
    return [(term, groups.get(term.slug, [])) for term in vocabulary]


def years_index(views: Sequence[IssueView]) -> tuple[Year, ...]:
    """Every published issue by year, newest first: 'July' → /2026-07/."""
    years: dict[str, list[Link]] = {}
    for view in views:  # already newest first
        year, _, _ = view.month.partition("-")
        month_name = view.label.rsplit(" ", 1)[0]
        years.setdefault(year, []).append(Link(month_name, view.url, len(view.entries), view.month))
    return tuple(Year(year, tuple(months)) for year, months in years.items())


def topic_index(
    taxonomy: Taxonomy, topic_links: Sequence[Link], all_topics: Link
) -> list[LinkGroup]:
    """The topics index: "All topics" first, then the picker's groups with their counts."""
    by_slug = {link.slug: link for link in topic_links}
    groups = [LinkGroup("", (all_topics,))]
    for group in topic_groups(taxonomy):
        groups.append(LinkGroup(group.label, tuple(by_slug[t.slug] for t in group.terms)))
    return groups


def side_panel(
    all_topics: Link,
    topic_links: Sequence[Link],
    type_links: Sequence[Link],
    views: Sequence[IssueView],
) -> SidePanel:
    """The side panel's lists (rendered once for the whole site, see `write_site`)."""
    return SidePanel(all_topics, tuple(topic_links), tuple(type_links), years_index(views))
