"""The summarized article as a reference to download: BibTeX, RIS and CSL-JSON (pure).

Written from the CSL-JSON item (`Article`) with the libraries the reader parses them with:
bibtexparser (its writer) with pylatexenc (the LaTeX encoder bibtexparser itself uses), and
rispy. Only the mapping of CSL fields to each format's fields is ours.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bibtexparser
import rispy
from bibtexparser import model as bibtex
from bibtexparser.middlewares import MonthAbbreviationMiddleware
from pylatexenc.latexencode import unicode_to_latex
from slugify import slugify

from newsletter.archive.scholar import BOOK_PARTS
from newsletter.archive.scholar import BOOKS
from newsletter.archive.scholar import author_sort_name
from newsletter.content.article import Article
from newsletter.content.article import Author

# CSL type -> BibTeX entry type; anything else is @misc.
BIBTEX_TYPES = {
    "article-journal": "article",
    "article-magazine": "article",
    "article-newspaper": "article",
    "review": "article",
    "chapter": "incollection",
    "entry-encyclopedia": "incollection",
    "book": "book",
    "paper-conference": "inproceedings",
    "report": "techreport",
    "thesis": "phdthesis",
}
# CSL type -> RIS TY; anything else is GEN.
RIS_TYPES = {
    "article-journal": "JOUR",
    "article-magazine": "MGZN",
    "article-newspaper": "NEWS",
    "review": "JOUR",
    "chapter": "CHAP",
    "entry-encyclopedia": "ENCYC",
    "book": "BOOK",
    "paper-conference": "CPAPER",
    "report": "RPRT",
    "thesis": "THES",
    "webpage": "ELEC",
}
# Media types for the download links (RIS and CSL-JSON have registered or customary ones).
MEDIA_TYPES = {
    "bib": "application/x-bibtex",
    "ris": "application/x-research-info-systems",
    "json": "application/vnd.citationstyles.csl+json",
}


def _one_line(value: Any) -> str:
    """Whitespace (newlines included) collapsed: no value may start a line of its own."""
    return " ".join(str(value).split())


def _editors(article: Article) -> tuple[Author, ...]:
    # `Article` reads `author`; editors have the same CSL shape, so read them the same way.
    return Article({"author": article.csl.get("editor") or ()}).authors


_LITTLE_WORDS = frozenset({"", "a", "an", "the", "on", "of", "in", "and", "for", "to", "is"})


def reference_key(article: Article) -> str:
    """A citation key in the usual author-year-word form, ASCII only: 'example2025routine'."""
    authors = article.authors
    first = authors[0] if authors else None
    name = (first.family or first.literal) if first else ""
    words = [w for w in re.split(r"\W+", article.title) if w.casefold() not in _LITTLE_WORDS]
    parts = [
        slugify(name, separator=""),
        str(article.year or ""),
        slugify(words[0]) if words else "",
    ]
    key = "".join(parts)
    return key or "article"


# -- BibTeX ---------------------------------------------------------------------------------

# BibTeX counts every brace, escaped or not, to find where a value ends, so an unmatched
# `\{` would end the field early in bibtex and biber; the text macros are always balanced.
_ESCAPED_BRACES = {r"\{": r"{\textbraceleft}", r"\}": r"{\textbraceright}"}


def latex(value: str) -> str:
    """Text as a BibTeX value: LaTeX specials and non-ASCII letters encoded (pylatexenc,
    which bibtexparser's own LatexEncodingMiddleware uses), every brace balanced."""
    encoded: str = unicode_to_latex(_one_line(value))
    return re.sub(r"\\[{}]", lambda m: _ESCAPED_BRACES[m.group(0)], encoded)


_VERBATIM_SAFE = "".join(c for c in map(chr, range(33, 127)) if c not in "{}\\")


def _verbatim(value: str) -> str:
    """A DOI or URL: kept as typed (biblatex reads these verbatim) but with braces and
    backslashes percent-encoded, so the value cannot end early or break the file."""
    return urllib.parse.quote(_one_line(value), safe=_VERBATIM_SAFE)


def _bibtex_name(author: Author) -> str:
    if author.literal:
        return "{" + latex(author.literal) + "}"  # braces: one name, never split at "and"
    return latex(author_sort_name(author))


def bibtex_entry(article: Article, key: str) -> str:
    """One BibTeX entry for the article."""
    kind = BIBTEX_TYPES.get(article.type, "misc")
    fields: list[tuple[str, str | int]] = []

    def add(name: str, value: str, *, encode: bool = True) -> None:
        if value.strip():
            fields.append((name, latex(value) if encode else value))

    if article.authors:
        fields.append(("author", " and ".join(_bibtex_name(a) for a in article.authors)))
    add("title", article.title)
    if article.type in BOOK_PARTS:
        add("booktitle", article.journal)
    elif article.type not in BOOKS:
        add("journal" if kind == "article" else "howpublished", article.journal)
    editors = _editors(article)
    if editors:
        fields.append(("editor", " and ".join(_bibtex_name(e) for e in editors)))
    parts = article.date_parts
    if parts:
        fields.append(("year", str(parts[0])))
    if len(parts) >= 2:  # an int: written as the standard macro (`month = mar`)
        fields.append(("month", parts[1]))
    add("volume", article.volume)
    add("number", article.issue)
    first, last = article.pages
    add("pages", f"{first}--{last}" if last else first)
    add("publisher", _text(article.csl, "publisher"))
    add("address", _text(article.csl, "publisher-place"))
    add("issn", _text(article.csl, "ISSN"))
    add("isbn", _text(article.csl, "ISBN"))
    if article.doi:
        fields.append(("doi", _verbatim(article.doi)))
    if article.url:
        fields.append(("url", _verbatim(article.url)))
    add("pmid", article.pmid)
    library = bibtexparser.Library()
    library.add(bibtex.Entry(kind, key, [bibtex.Field(name, value) for name, value in fields]))
    text: str = bibtexparser.write_string(
        library, prepend_middleware=[MonthAbbreviationMiddleware()]
    )
    return text.strip() + "\n"


# -- RIS ------------------------------------------------------------------------------------


class _RisWriter(rispy.RisWriter):
    """rispy's writer without its "1." counter line, which is not part of RIS."""

    def set_header(self, count: int) -> str:
        return ""


def ris_record(article: Article) -> str:
    """One RIS record for the article."""
    record: dict[str, Any] = {"type_of_reference": RIS_TYPES.get(article.type, "GEN")}

    def add(key: str, value: str) -> None:
        if value.strip():
            record[key] = _one_line(value)

    add("title", article.title)
    if article.authors:
        record["authors"] = [_one_line(author_sort_name(a)) for a in article.authors]
    editors = _editors(article)
    if editors:
        record["secondary_authors"] = [_one_line(author_sort_name(e)) for e in editors]
    parts = article.date_parts
    if parts:
        record["year"] = str(parts[0])
        record["date"] = "/".join(f"{p:04d}" if i == 0 else f"{p:02d}" for i, p in enumerate(parts))
    if article.type not in BOOKS:
        add("secondary_title", article.journal)
    add("volume", article.volume)
    add("number", article.issue)
    first, last = article.pages
    add("start_page", first)
    add("end_page", last)
    add("publisher", _text(article.csl, "publisher"))
    add("place_published", _text(article.csl, "publisher-place"))
    add("issn", _text(article.csl, "ISSN") or _text(article.csl, "ISBN"))
    add("doi", article.doi)
    if article.url:
        record["urls"] = [_one_line(article.url)]
    if article.pmid:
        # RIS has no PMID tag; PubMed's own RIS export puts it in AN (accession number).
        add("accession_number", article.pmid)
    text: str = rispy.dumps([record], implementation=_RisWriter)
    return text.strip() + "\n"


# -- CSL-JSON -------------------------------------------------------------------------------


def csl_json(article: Article, key: str) -> str:
    """The CSL-JSON item as given, as a one-item array with an `id` (CSL-JSON wants one)."""
    item = dict(article.csl)
    item.setdefault("id", key)
    return json.dumps([item], ensure_ascii=False, indent=2, default=str) + "\n"


def _text(csl: Mapping[str, Any], key: str) -> str:
    value = csl.get(key)
    if isinstance(value, list):  # ISSN/ISBN may be lists in CSL-JSON from Crossref
        value = value[0] if value else None
    return str(value).strip() if value is not None else ""


# -- the downloads beside a summary page -----------------------------------------------------

# File extension -> what the link says; the files are `article.<extension>`.
LABELS = {"bib": "BibTeX", "ris": "RIS", "json": "CSL-JSON"}


@dataclass(frozen=True)
class Download:
    """One "Cite the article" link: label, rooted URL, the name to save as, media type."""

    label: str
    url: str
    filename: str
    media_type: str


def download_files(article: Article | None) -> dict[str, bytes]:
    """'article.bib' / '.ris' / '.json' -> contents; nothing without article data."""
    if article is None:
        return {}
    key = reference_key(article)
    texts = {
        "bib": bibtex_entry(article, key),
        "ris": ris_record(article),
        "json": csl_json(article, key),
    }
    return {f"article.{extension}": text.encode("utf-8") for extension, text in texts.items()}


def download_links(article: Article | None, page_url: str) -> list[Download]:
    """The links to `download_files` from the page at `page_url` (rooted, ends with '/')."""
    if article is None:
        return []
    key = reference_key(article)
    return [
        Download(label, f"{page_url}article.{ext}", f"{key}.{ext}", MEDIA_TYPES[ext])
        for ext, label in LABELS.items()
    ]
