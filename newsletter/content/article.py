"""The published article a summary is about, as structured data (pure).

The data is a CSL-JSON item (the format of citeproc, Zotero and Crossref): `type`, `title`,
`author` ([{family, given}] or [{literal}]), `issued` ({"date-parts": [[Y, M, D]]}),
`container-title`, `volume`, `issue`, `page` ("53-70"), `DOI`, `URL`, `PMID`. The reader builds
it from `article:` in the front matter or from a `reference:` file (BibTeX, RIS, CSL-JSON); the
renderer turns it into an APA citation; the archive into meta tags and downloads. `Article`
only reads it: one place that knows the CSL-JSON field names.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")


def bare_doi(value: str) -> str | None:
    """The bare DOI of '10.x/y', 'doi:10.x/y' or a doi.org URL; None if it is not a DOI."""
    doi = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", "", value.strip(), flags=re.I)
    return doi if DOI_RE.match(doi) else None


@dataclass(frozen=True)
class Author:
    """One author: family and given names, or a literal name (an organization)."""

    family: str = ""
    given: str = ""
    literal: str = ""

    @property
    def name(self) -> str:
        """'Given Family', or the literal name."""
        return self.literal or " ".join(part for part in (self.given, self.family) if part)


@dataclass(frozen=True)
class Article:
    """A CSL-JSON item with typed accessors. `csl` is the whole item, as validated."""

    csl: Mapping[str, Any]

    def _text(self, key: str) -> str:
        value = self.csl.get(key)
        return str(value).strip() if value is not None else ""

    @property
    def type(self) -> str:
        return self._text("type") or "article-journal"

    @property
    def title(self) -> str:
        return self._text("title")

    @property
    def authors(self) -> tuple[Author, ...]:
        return tuple(
            Author(
                family=str(a.get("family", "")).strip(),
                given=str(a.get("given", "")).strip(),
                literal=str(a.get("literal", "")).strip(),
            )
            for a in self.csl.get("author") or ()
            if isinstance(a, Mapping)
        )

    @property
    def editors(self) -> tuple[Author, ...]:
        """The editors (of the book a chapter is in)."""
        return tuple(
            Author(
                family=str(a.get("family", "")).strip(),
                given=str(a.get("given", "")).strip(),
                literal=str(a.get("literal", "")).strip(),
            )
            for a in self.csl.get("editor") or ()
            if isinstance(a, Mapping)
        )

    @property
    def publisher(self) -> str:
        return self._text("publisher")

    @property
    def date_parts(self) -> tuple[int, ...]:
        """(year,), (year, month) or (year, month, day); () when not given."""
        issued = self.csl.get("issued")
        if not isinstance(issued, Mapping):
            return ()
        parts = issued.get("date-parts") or [[]]
        return tuple(int(p) for p in (parts[0] if parts else []))

    @property
    def year(self) -> int | None:
        return self.date_parts[0] if self.date_parts else None

    @property
    def journal(self) -> str:
        return self._text("container-title")

    @property
    def volume(self) -> str:
        return self._text("volume")

    @property
    def issue(self) -> str:
        return self._text("issue")

    @property
    def pages(self) -> tuple[str, str]:
        """(first page, last page); last is '' for a single page or an article number."""
        page = self._text("page").replace("–", "-").replace("—", "-")
        first, _, last = page.partition("-")
        return first.strip(), last.strip()

    @property
    def doi(self) -> str:
        return self._text("DOI")

    @property
    def pmid(self) -> str:
        return self._text("PMID")

    @property
    def url(self) -> str:
        return self._text("URL")

    @property
    def doi_url(self) -> str:
        """https://doi.org/<DOI>, or '' without a DOI."""
        return doi_url(self.doi)

    @property
    def pubmed_url(self) -> str:
        """The PubMed page of the article, or '' without a PMID."""
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/" if self.pmid else ""


def doi_url(doi: str) -> str:
    """https://doi.org/<doi> with the characters a URL cannot hold escaped; '' for ''."""
    if not doi:
        return ""
    return "https://doi.org/" + urllib.parse.quote(doi, safe="/:;()._-")
