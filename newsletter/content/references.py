"""The summarized article as one CSL-JSON item: from `article:` front matter or from a reference
manager's export (BibTeX, RIS, CSL-JSON), normalized and checked (pure: takes text and data).

`normalize_csl` turns what an editor types (`issued: 2014`, `author: ["Cuijpers, P."]`) into
strict CSL-JSON and adds one `ContentError` per problem, each naming the file and the field
(`article.DOI`). `parse_reference` reads an export's text into the same kind of item; its
problems name the export file. BibTeX is parsed by bibtexparser (v2 API), RIS by rispy.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from newsletter.content.article import bare_doi
from newsletter.errors import ContentError

if TYPE_CHECKING:
    from bibtexparser.model import Entry

# bibtexparser (with pylatexenc) and rispy are imported when a reference file is read: most
# summaries have none, and every command that reads content would otherwise pay for them.

# bibtexparser logs each block it cannot parse; that failure is reported here, as one problem
# naming the file, so its log line would only repeat it (on stderr, through logging's last
# resort, when the program has configured no logging).
logging.getLogger("bibtexparser").addHandler(logging.NullHandler())

# The CSL item types (CSL 1.0.2); `type` must be one of them.
CSL_TYPES = frozenset(
    [
        "article",
        "article-journal",
        "article-magazine",
        "article-newspaper",
        "bill",
        "book",
        "broadcast",
        "chapter",
        "classic",
        "collection",
        "dataset",
        "document",
        "entry",
        "entry-dictionary",
        "entry-encyclopedia",
        "event",
        "figure",
        "graphic",
        "hearing",
        "interview",
        "legal_case",
        "legislation",
        "manuscript",
        "map",
        "motion_picture",
        "musical_score",
        "pamphlet",
        "paper-conference",
        "patent",
        "performance",
        "periodical",
        "personal_communication",
        "post",
        "post-weblog",
        "regulation",
        "report",
        "review",
        "review-book",
        "software",
        "song",
        "speech",
        "standard",
        "thesis",
        "treaty",
        "webpage",
    ]
)
NAME_FIELDS = ("author", "editor")
DATE_FIELDS = ("issued",)
TEXT_FIELDS = (
    "type",
    "title",
    "container-title",
    "collection-title",
    "volume",
    "issue",
    "page",
    "edition",
    "publisher",
    "publisher-place",
    "genre",
    "status",
    "DOI",
    "URL",
    "PMID",
    "PMCID",
    "ISSN",
    "ISBN",
    "language",
)
# What `article:` may hold: the CSL-JSON variables a citation of a published article uses.
CSL_FIELDS = frozenset(TEXT_FIELDS + NAME_FIELDS + DATE_FIELDS)
_NAME_KEYS = frozenset(
    {"family", "given", "literal", "non-dropping-particle", "dropping-particle", "suffix"}
)
# Common names for CSL fields, for a helpful "did you mean" on a typo or a BibTeX habit.
_MEANT = {
    "journal": "container-title",
    "authors": "author",
    "year": "issued",
    "date": "issued",
    "pages": "page",
    "number": "issue",
    "doi": "DOI",
    "url": "URL",
    "pmid": "PMID",
    "booktitle": "container-title",
    "editors": "editor",
}
EARLIEST_YEAR = 1800  # older than any article a research digest summarizes
_ISO_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


def normalize_csl(
    data: object, source: str, problems: list[ContentError], prefix: str = "article."
) -> dict[str, Any] | None:
    """Strict CSL-JSON from `data`, or None when there are problems: see `read_csl`."""
    before = len(problems)
    csl = read_csl(data, source, problems, prefix)
    return csl if len(problems) == before else None


def read_csl(
    data: object, source: str, problems: list[ContentError], prefix: str = "article."
) -> dict[str, Any]:
    """Strict CSL-JSON from `data` (a mapping): every field that is right, and one problem
    added to `problems` for each that is not or is missing, naming `source` and the field as
    `<prefix><field>` (so a draft can keep what is right). Shorthands accepted:
    `issued: 2014`, `"2014-03"`, a date; `author: ["Family, Given", "An Organization"]`; numbers
    for volume, issue, page and PMID. `DOI` may be a doi.org URL or `doi:...`."""
    bad: set[str] = set()  # the fields already reported: not "required" on top

    def problem(field: str, message: str) -> None:
        bad.add(field)
        problems.append(ContentError(source, message, field=f"{prefix}{field}"))

    if not isinstance(data, Mapping):
        problems.append(
            ContentError(source, "must be a mapping of CSL-JSON fields", field=prefix.rstrip("."))
        )
        return {}
    csl: dict[str, Any] = {}
    for key in sorted(set(data) - CSL_FIELDS, key=str):
        meant = _MEANT.get(str(key).lower()) or _MEANT.get(str(key))
        hint = f"; did you mean {meant!r}?" if meant else ""
        problem(
            str(key), f"unknown CSL-JSON field{hint} (allowed: {', '.join(sorted(CSL_FIELDS))})"
        )
    for key in TEXT_FIELDS:
        value = data.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problem(key, "must be text, not a list or mapping")
            continue
        csl[key] = " ".join(str(value).split())
    for key in NAME_FIELDS:
        if data.get(key) not in (None, "", []):
            names = _names(data[key], lambda message, key=key: problem(key, message))
            if names:
                csl[key] = names
    if data.get("issued") not in (None, ""):
        parts = _date_parts(data["issued"], lambda message: problem("issued", message))
        if parts:
            csl["issued"] = {"date-parts": [parts]}
    _check(csl, bad, problem)
    return csl


def _check(csl: dict[str, Any], bad: set[str], problem: Any) -> None:
    """The rules of a citable article (`bad`: the fields already reported, so that a field
    given but wrong is not also reported missing); `DOI` is normalized in place."""
    csl.setdefault("type", "article-journal")
    if csl["type"] not in CSL_TYPES:
        problem("type", f"{csl['type']!r} is not a CSL type (e.g. article-journal, chapter, book)")
    if not csl.get("title") and "title" not in bad:
        problem("title", "is required")
    if not csl.get("author") and "author" not in bad:
        problem("author", "at least one author is required")
    if "issued" not in csl and "issued" not in bad:
        problem("issued", "the year of publication is required")
    if "DOI" in csl:
        doi = bare_doi(csl["DOI"])
        if doi is None:
            problem("DOI", f"{csl['DOI']!r} is not a DOI (expected 10.NNNN/...)")
        else:
            csl["DOI"] = doi
    if "PMID" in csl and not re.fullmatch(r"[1-9]\d{0,9}", csl["PMID"]):
        problem("PMID", f"{csl['PMID']!r} is not a PubMed ID (digits only)")
    if "URL" in csl and not re.match(r"^https?://\S+$", csl["URL"], re.I):
        problem("URL", f"{csl['URL']!r} is not an http(s) URL")
    if csl["type"] == "chapter" and not csl.get("container-title"):
        problem("container-title", "a chapter needs the title of its book")


def _names(value: object, problem: Any) -> list[dict[str, str]]:
    """CSL names from a list of {family, given} / {literal} mappings or 'Family, Given' text."""
    items = [value] if isinstance(value, str | Mapping) else value
    if not isinstance(items, list):
        problem("must be a list of names")
        return []
    names: list[dict[str, str]] = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, str):
            name = _name_from_text(item)
        elif isinstance(item, Mapping):
            unknown = sorted(set(map(str, item)) - _NAME_KEYS)
            if unknown:
                problem(f"name {number}: unknown key {unknown[0]!r} (use family and given)")
                continue
            name = {k: " ".join(str(v).split()) for k, v in item.items() if v not in (None, "")}
        else:
            problem(f"name {number}: must be 'Family, Given' or a mapping of family and given")
            continue
        if not (name.get("family") or name.get("literal")):
            problem(f"name {number}: has no family name")
            continue
        names.append(name)
    return names


def _name_from_text(text: str) -> dict[str, str]:
    """'Cuijpers, P.' -> family and given; text without a comma is a literal (organization)."""
    family, comma, given = (" ".join(text.split())).partition(",")
    if not comma:
        return {"literal": family} if family else {}
    return (
        {"family": family.strip(), "given": given.strip()}
        if given.strip()
        else {"family": family.strip()}
    )


def _date_parts(value: object, problem: Any) -> list[int]:
    """[year], [year, month] or [year, month, day] from the shorthands or CSL date-parts."""
    parts: list[int] = []
    if isinstance(value, datetime.date):
        parts = [value.year, value.month, value.day]
    elif isinstance(value, int) and not isinstance(value, bool):
        parts = [value]
    elif isinstance(value, str):
        match = _ISO_DATE.match(value.strip())
        if match is None:
            problem(f"{value!r} is not a date (use 2014, 2014-03 or 2014-03-05)")
            return []
        parts = [int(p) for p in match.groups() if p]
    elif isinstance(value, Mapping) and isinstance(value.get("date-parts"), list):
        first = value["date-parts"][0] if value["date-parts"] else None
        try:
            parts = [int(p) for p in first] if isinstance(first, list) else []
        except (TypeError, ValueError):
            parts = []
        if not 1 <= len(parts) <= 3:
            problem("date-parts must be [[year]], [[year, month]] or [[year, month, day]]")
            return []
    else:
        problem("must be a year, a date (2014-03-05) or CSL date-parts")
        return []
    latest = datetime.date.today().year + 1  # accepted articles appear ahead of their issue
    if not EARLIEST_YEAR <= parts[0] <= latest:
        problem(f"{parts[0]} is not a plausible year of publication ({EARLIEST_YEAR}–{latest})")
        return []
    try:
        datetime.date(parts[0], *(parts[1:] + [1] * (3 - len(parts))))
    except ValueError:
        problem(f"{'-'.join(map(str, parts))} is not a real date")
        return []
    return parts


# -- reference manager exports --------------------------------------------------------------

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


def article_from_front_matter(
    meta: Mapping[str, Any],
    source: str,
    problems: list[ContentError],
    read_reference: Callable[[str], tuple[str, str] | None],
) -> dict[str, Any] | None:
    """The CSL item of a summary's `article:` or `reference:` (None without either, or with a
    problem, added to `problems`). `read_reference(name)` gives (the file's path for messages,
    its text) or None when it added its own problem. The one DOI rule: `doi:` fills a missing
    `DOI`, and `doi:` and the article's DOI that differ are an error."""
    has_article = meta.get("article") is not None
    reference = meta.get("reference")
    if has_article and reference is not None:
        message = "give the article as `article:` or as `reference:`, not both"
        problems.append(ContentError(source, message, field="reference"))
        return None
    if meta.get("citation") is not None and (has_article or reference is not None):
        field = "article" if has_article else "reference"
        message = f"give either `citation:` (free text) or `{field}:`, not both: the citation is "
        message += f"rendered from `{field}:`"
        problems.append(ContentError(source, message, field="citation"))
        return None
    if has_article:
        raw: object = meta["article"]
        where, prefix = source, "article."
    elif reference is not None:
        if not isinstance(reference, str) or not _plain_file_name(reference):
            message = "must be the name of a .bib, .ris or .json file beside the summary file"
            problems.append(ContentError(source, message, field="reference"))
            return None
        found = read_reference(reference)
        if found is None:
            return None
        where, text = found
        prefix = ""
        try:
            raw = parse_reference(text, "." + reference.rpartition(".")[2], where)
        except ContentError as error:
            problems.append(error)
            return None
    else:
        return None
    csl = normalize_csl(raw, where, problems, prefix)
    if csl is None:
        return None
    given = meta.get("doi")
    doi = bare_doi(str(given)) if isinstance(given, str | float | int) else None
    if doi and csl.get("DOI") and doi.lower() != str(csl["DOI"]).lower():
        message = f"{doi!r} differs from the article's DOI {csl['DOI']!r}: give it once"
        problems.append(ContentError(source, message, field="doi"))
        return None
    if doi and not csl.get("DOI"):
        csl["DOI"] = doi
    return csl


def _plain_file_name(name: str) -> bool:
    return (
        name.strip() == name
        and "/" not in name
        and "\\" not in name
        and name not in ("", ".", "..")
        and name.lower().endswith(REFERENCE_SUFFIXES)
    )
