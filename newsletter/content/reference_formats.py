"""Reference managers' exports (BibTeX, RIS, CSL-JSON) read into one CSL-JSON item, not yet
normalized (pure: takes text). BibTeX is parsed by bibtexparser (v2 API), RIS by rispy; both are
imported when a reference file is read: most summaries have none, and every command that reads
content would otherwise pay for them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from newsletter.content.references import CSL_FIELDS
from newsletter.content.references import NAME_FIELDS
from newsletter.errors import ContentError

if TYPE_CHECKING:
    from bibtexparser.model import Entry

# bibtexparser logs each block it cannot parse; that failure is reported here, as one problem
# naming the file, so its log line would only repeat it (on stderr, through logging's last
# resort, when the program has configured no logging).
logging.getLogger("bibtexparser").addHandler(logging.NullHandler())

REFERENCE_SUFFIXES = (".bib", ".ris", ".json")


def parse_reference(text: str, suffix: str, source: str) -> dict[str, Any]:
    """The one entry of an export (`suffix` .bib, .ris or .json) as CSL-JSON fields, not yet
    normalized; `ContentError` naming `source` when it cannot be read or holds no or several
    entries (a summary is about one article)."""
    suffix = suffix.lower()
    if suffix == ".bib":
        entries = _bibtex_entries(text, source)
    elif suffix == ".ris":
        entries = _ris_entries(text, source)
    elif suffix == ".json":
        entries = _csl_json_entries(text, source)
    else:
        raise ContentError(source, "a reference must be a .bib, .ris or .json (CSL-JSON) file")
    if not entries:
        raise ContentError(source, "holds no reference entry")
    if len(entries) > 1:
        raise ContentError(source, f"holds {len(entries)} entries: a summary is about one article")
    return entries[0]


def _bibtex_entries(text: str, source: str) -> list[dict[str, Any]]:
    import bibtexparser
    from bibtexparser.middlewares import LatexDecodingMiddleware
    from bibtexparser.middlewares import SeparateCoAuthors
    from bibtexparser.middlewares import SplitNameParts

    # LaTeX is decoded before the names are split, keeping {braced groups} so that a braced
    # organization name stays one name; the braces are dropped afterwards.
    library = bibtexparser.parse_string(
        text,
        append_middleware=[
            LatexDecodingMiddleware(keep_braced_groups=True),
            SeparateCoAuthors(),
            SplitNameParts(),
        ],
    )
    if library.failed_blocks:
        block = library.failed_blocks[0]
        line = f"line {block.start_line + 1}: " if block.start_line is not None else ""
        # bibtexparser's exceptions carry their reason in different attributes, none in str().
        error = block.error
        reason = getattr(error, "abort_reason", None) or getattr(error, "message", None)
        raise ContentError(source, f"{line}not valid BibTeX: {reason or type(error).__name__}")
    return [_csl_from_bibtex(entry) for entry in library.entries]


_BIBTEX_TYPES = {
    "article": "article-journal",
    "book": "book",
    "inbook": "chapter",
    "incollection": "chapter",
    "inproceedings": "paper-conference",
    "conference": "paper-conference",
    "phdthesis": "thesis",
    "mastersthesis": "thesis",
    "techreport": "report",
    "report": "report",
    "online": "webpage",
}
# BibTeX (and biblatex) field -> CSL variable.
_BIBTEX_FIELDS = {
    "title": "title",
    "volume": "volume",
    "number": "issue",
    "issue": "issue",
    "pages": "page",
    "edition": "edition",
    "publisher": "publisher",
    "address": "publisher-place",
    "location": "publisher-place",
    "doi": "DOI",
    "url": "URL",
    "pmid": "PMID",
    "pmcid": "PMCID",
    "issn": "ISSN",
    "isbn": "ISBN",
    "language": "language",
}


def _unbrace(text: str) -> str:
    return " ".join(text.replace("{", "").replace("}", "").split())


def _csl_from_bibtex(entry: Entry) -> dict[str, Any]:
    fields = {field.key.lower(): field.value for field in entry.fields}
    csl: dict[str, Any] = {"type": _BIBTEX_TYPES.get(entry.entry_type.lower(), "article")}
    for key, target in _BIBTEX_FIELDS.items():
        if isinstance(fields.get(key), str) and fields[key].strip():
            csl.setdefault(target, _unbrace(fields[key]))
    journal = fields.get("journal") or fields.get("journaltitle") or fields.get("booktitle")
    if isinstance(journal, str) and journal.strip():
        csl["container-title"] = _unbrace(journal)
    for key in NAME_FIELDS:
        if isinstance(fields.get(key), list):
            csl[key] = [_csl_name(parts) for parts in fields[key]]
    year = str(fields.get("year") or fields.get("date") or "").strip()
    month = _bibtex_month(str(fields.get("month") or ""))
    if re.fullmatch(r"\d{4}", year):
        csl["issued"] = {"date-parts": [[int(year), month] if month else [int(year)]]}
    elif year:
        csl["issued"] = year  # a biblatex date ("2014-03-05"): the shorthand normalize reads
    return csl


def _csl_name(parts: Any) -> dict[str, str]:
    """A CSL name from bibtexparser's NameParts (first, von, last, jr)."""
    family = _unbrace(" ".join(parts.last))
    given = _unbrace(" ".join(parts.first))
    if not given and not parts.von and " ".join(parts.last).startswith("{"):
        return {"literal": family}  # {World Health Organization}
    name = {"family": family, "given": given}
    if parts.von:
        name["non-dropping-particle"] = _unbrace(" ".join(parts.von))
    if parts.jr:
        name["suffix"] = _unbrace(" ".join(parts.jr))
    return {key: value for key, value in name.items() if value}


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _bibtex_month(text: str) -> int | None:
    text = _unbrace(text).lower()
    if text.isdigit() and 1 <= int(text) <= 12:
        return int(text)
    return _MONTHS.index(text[:3]) + 1 if text[:3] in _MONTHS else None


_RIS_TYPES = {
    "JOUR": "article-journal",
    "EJOUR": "article-journal",
    "JFULL": "article-journal",
    "INPR": "article-journal",
    "MGZN": "article-magazine",
    "NEWS": "article-newspaper",
    "BOOK": "book",
    "EBOOK": "book",
    "EDBOOK": "book",
    "CHAP": "chapter",
    "ECHAP": "chapter",
    "CONF": "paper-conference",
    "CPAPER": "paper-conference",
    "RPRT": "report",
    "THES": "thesis",
    "ELEC": "webpage",
}


def _ris_entries(text: str, source: str) -> list[dict[str, Any]]:
    import rispy

    try:
        records = rispy.loads(text)
    except (OSError, ValueError) as error:  # rispy raises IOError for a tag out of place
        raise ContentError(source, f"not valid RIS: {error}") from None
    return [_csl_from_ris(record) for record in records]


def _first(record: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = record.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None and str(value).strip():
            return " ".join(str(value).split())
    return ""


def _csl_from_ris(record: Mapping[str, Any]) -> dict[str, Any]:
    kind = _RIS_TYPES.get(str(record.get("type_of_reference", "")).upper(), "article")
    csl: dict[str, Any] = {"type": kind}
    pairs = {
        "title": _first(record, "title", "primary_title"),
        # T2 is the journal in most exports (JF too, JO and JA abbreviations), a chapter's book.
        "container-title": _first(
            record, "secondary_title", "alternate_title3", "journal_name", "alternate_title2"
        ),
        "volume": _first(record, "volume"),
        "issue": _first(record, "number"),
        "edition": _first(record, "edition"),
        "publisher": _first(record, "publisher"),
        "publisher-place": _first(record, "place_published"),
        "DOI": _first(record, "doi"),
        "URL": _first(record, "urls"),
        "ISSN": _first(record, "issn"),
        "language": _first(record, "language"),
    }
    csl.update({key: value for key, value in pairs.items() if value})
    start, end = _first(record, "start_page"), _first(record, "end_page")
    if start:
        csl["page"] = f"{start}-{end}" if end and end != start else start
    authors = list(record.get("authors") or []) + list(record.get("first_authors") or [])
    if authors:
        csl["author"] = authors  # "Family, Given": the shorthand normalize reads
    editors = record.get("secondary_authors") if kind == "chapter" else None
    if editors:
        csl["editor"] = list(editors)
    # PY is "2014" or "2014/03/05/"; DA (date) "2014/03/05".
    date = _first(record, "date", "year", "publication_year")
    numbers = [int(p) for p in re.split(r"[/-]", date) if p.strip().isdigit()][:3]
    if numbers:
        csl["issued"] = {"date-parts": [numbers]}
    return csl


def _csl_json_entries(text: str, source: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ContentError(source, f"line {error.lineno}: not valid JSON: {error.msg}") from None
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise ContentError(source, "CSL-JSON must be an item (an object) or a list of items")
    # Reference managers add their own keys (id, abstract, accessed, note): only the fields a
    # citation uses are kept.
    return [{key: value for key, value in item.items() if key in CSL_FIELDS} for item in items]
