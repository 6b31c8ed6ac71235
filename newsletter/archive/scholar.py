"""What reference managers and search engines read on a summary page (pure).

- Highwire Press `citation_*` meta tags for the summarized article: the tags Google Scholar
  documents and Zotero's, Mendeley's and EndNote's browser connectors read, so "save to Zotero"
  on a summary page saves the article;
- schema.org JSON-LD describing the summary as a `Review` whose `itemReviewed` is the
  `ScholarlyArticle`;
- the APA citation of the summary page itself ("Cite this summary").

Only what the data holds is emitted: no empty or placeholder tags. A summary with just a `doi`
gets `citation_doi` and a reviewed item that is only that DOI.
"""

from __future__ import annotations

import calendar
import urllib.parse
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from newsletter.content.article import Article
from newsletter.content.article import Author
from newsletter.content.model import Summary
from newsletter.content.model import parse_month
from newsletter.render.citation import page_citation

# CSL types whose container is a book (Highwire: citation_inbook_title), not a periodical.
BOOK_PARTS = frozenset({"chapter", "entry-encyclopedia", "entry-dictionary", "entry"})
# CSL types that are a whole book: no container at all.
BOOKS = frozenset({"book"})


def doi_of(summary: Summary) -> str:
    """The summary's DOI: its `doi` field, else the article's `DOI`."""
    if summary.doi:
        return summary.doi
    return summary.article.doi if summary.article is not None else ""


def article_of(summary: Summary) -> Article | None:
    """The summarized article, its DOI filled from the summary's `doi` when it has none
    (so the downloads carry the DOI the page shows)."""
    article = summary.article
    if article is not None and not article.doi and summary.doi:
        return Article({**article.csl, "DOI": summary.doi})
    return article


def doi_url(doi: str) -> str:
    """https://doi.org/<doi> (quoted as `Summary.doi_url` does), or '' for no DOI."""
    if not doi:
        return ""
    return "https://doi.org/" + urllib.parse.quote(doi, safe="/:;()._-")


def author_sort_name(author: Author) -> str:
    """'Family, Given' (the form Highwire and RIS expect), or the literal name."""
    if author.literal:
        return author.literal
    return ", ".join(part for part in (author.family, author.given) if part)


def highwire_date(article: Article) -> str:
    """'YYYY/MM/DD' when the day is known, else 'YYYY' (Google Scholar's two forms)."""
    parts = article.date_parts
    if len(parts) >= 3:
        return f"{parts[0]:04d}/{parts[1]:02d}/{parts[2]:02d}"
    return f"{parts[0]:04d}" if parts else ""


def iso_date(article: Article) -> str:
    """'YYYY', 'YYYY-MM' or 'YYYY-MM-DD' (ISO 8601, as schema.org's Date wants)."""
    return "-".join(
        f"{part:04d}" if i == 0 else f"{part:02d}" for i, part in enumerate(article.date_parts)
    )


def highwire_tags(summary: Summary) -> list[tuple[str, str]]:
    """(name, content) of every `citation_*` meta tag for the summarized article, in the
    order Google Scholar lists them; only tags whose value is known."""
    article = summary.article
    tags: list[tuple[str, str]] = []
    if article is not None:
        tags.append(("citation_title", article.title))
        tags += [("citation_author", author_sort_name(a)) for a in article.authors]
        tags.append(("citation_publication_date", highwire_date(article)))
        if article.type in BOOK_PARTS:
            tags.append(("citation_inbook_title", article.journal))
        elif article.type not in BOOKS:
            tags.append(("citation_journal_title", article.journal))
        tags.append(("citation_volume", article.volume))
        tags.append(("citation_issue", article.issue))
        first, last = article.pages
        tags.append(("citation_firstpage", first))
        tags.append(("citation_lastpage", last))
    tags.append(("citation_doi", doi_of(summary)))
    if article is not None:
        tags.append(("citation_pmid", article.pmid))
    return [(name, " ".join(value.split())) for name, value in tags if value.strip()]


def _person(author: Author) -> dict[str, Any]:
    if author.literal:
        return {"@type": "Organization", "name": author.literal}
    person: dict[str, Any] = {"@type": "Person", "name": author.name}
    if author.family:
        person["familyName"] = author.family
    if author.given:
        person["givenName"] = author.given
    return person


def _container(article: Article) -> dict[str, Any] | None:
    """The article's place: issue in volume in periodical (schema.org's nesting), or a book."""
    if article.type in BOOKS:
        return None
    if article.type in BOOK_PARTS:
        return {"@type": "Book", "name": article.journal} if article.journal else None
    place: dict[str, Any] | None = None
    if article.journal:
        place = {"@type": "Periodical", "name": article.journal}
    if article.volume:
        volume: dict[str, Any] = {"@type": "PublicationVolume", "volumeNumber": article.volume}
        if place is not None:
            volume["isPartOf"] = place
        place = volume
    if article.issue:
        issue: dict[str, Any] = {"@type": "PublicationIssue", "issueNumber": article.issue}
        if place is not None:
            issue["isPartOf"] = place
        place = issue
    return place


def scholarly_article(summary: Summary) -> dict[str, Any] | None:
    """The summarized article as a schema.org `ScholarlyArticle` (or `Chapter`, `Book`);
    None when the summary has neither article data nor a DOI."""
    article = summary.article
    doi = doi_of(summary)
    if article is None and not doi:
        return None
    kind = "ScholarlyArticle"
    if article is not None and article.type in BOOK_PARTS:
        kind = "Chapter"
    elif article is not None and article.type in BOOKS:
        kind = "Book"
    item: dict[str, Any] = {"@type": kind}
    if article is not None:
        if article.title:
            item["name"] = article.title
        if article.authors:
            item["author"] = [_person(a) for a in article.authors]
        if article.date_parts:
            item["datePublished"] = iso_date(article)
        container = _container(article)
        if container is not None:
            item["isPartOf"] = container
        first, last = article.pages
        if first:
            item["pageStart"] = first
        if last:
            item["pageEnd"] = last
        if article.url:
            item["url"] = article.url
    identifiers = []
    if doi:
        identifiers.append({"@type": "PropertyValue", "propertyID": "DOI", "value": doi})
        item["sameAs"] = doi_url(doi)
    if article is not None and article.pmid:
        identifiers.append({"@type": "PropertyValue", "propertyID": "PMID", "value": article.pmid})
    if identifiers:
        item["identifier"] = identifiers[0] if len(identifiers) == 1 else identifiers
    return item


@dataclass(frozen=True)
class PageFacts:
    """What describes the summary page itself: the network, its URL and month."""

    network: str
    url: str  # absolute
    language: str
    site_url: str  # absolute, the archive's home
    author: str = ""  # the summary's byline: its author, instead of the network


def json_ld(summary: Summary, facts: PageFacts) -> dict[str, Any]:
    """schema.org data for the summary page: a `Review` of the article (a `CreativeWork`
    when nothing is known of the article). Serialized in the template with `tojson`, which
    escapes `<`, `>`, `&` and `'` so no value can close the <script> element."""
    network = {"@type": "Organization", "name": facts.network, "url": facts.site_url}
    year, month = parse_month(summary.month)
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "CreativeWork",
        "name": summary.title,
        "headline": summary.title,
        "url": facts.url,
        "datePublished": f"{year:04d}-{month:02d}",
        "inLanguage": facts.language,
        "author": {"@type": "Person", "name": facts.author} if facts.author else network,
        "publisher": network,
    }
    if summary.topics:
        data["keywords"] = [topic.label for topic in summary.topics]
    reviewed = scholarly_article(summary)
    if reviewed is not None:
        data["@type"] = "Review"
        data["itemReviewed"] = reviewed
    return data


@dataclass(frozen=True)
class Citation:
    """One citation, as HTML (with <i>) and as plain text (to copy)."""

    html: Markup
    text: str


def summary_citation(summary: Summary, facts: PageFacts) -> Citation:
    """The APA 7 citation of the summary page. With a byline (`author:`, or `[content]
    default_author`), its author: the byline's names, the issue's year and month, the title
    in italics, the network as the site, the URL, by citeproc-py as the articles' are.
    Without one, the network as group author, the date, the title, the URL (APA omits the site
    name when it is the author), hand-written: four fixed parts, no names to format."""
    year, month = parse_month(summary.month)
    if facts.author.strip():
        html, text = page_citation(
            facts.author, summary.title.strip(), year, month, facts.network.strip(), facts.url
        )
        return Citation(html=html, text=text)
    title = summary.title.strip()
    end = "" if title[-1:] in "?!." else "."
    author = facts.network.strip()
    author_end = "" if author.endswith(".") else "."
    date = f"({year}, {calendar.month_name[month]})."
    text = f"{author}{author_end} {date} {title}{end} {facts.url}"
    html = Markup("{}{} {} <i>{}</i>{} {}").format(
        author, author_end, date, title, end, Markup('<a href="{0}">{0}</a>').format(facts.url)
    )
    return Citation(html=html, text=text)
