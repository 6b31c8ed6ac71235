"""The summarized article as one CSL-JSON item: from `article:` front matter or from a reference
manager's export (BibTeX, RIS, CSL-JSON), normalized and checked (pure: takes text and data).

`normalize_csl` turns what an editor types (`issued: 2014`, `author: ["Cuijpers, P."]`) into
strict CSL-JSON and adds one `ContentError` per problem, each naming the file and the field
(`article.DOI`). Exports are read by `reference_formats.parse_reference`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from newsletter.content.article import bare_doi
from newsletter.errors import ContentError

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
    # Imported here: reference_formats uses this module's field lists.
    from newsletter.content.reference_formats import parse_reference

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
    from newsletter.content.reference_formats import REFERENCE_SUFFIXES

    return (
        name.strip() == name
        and "/" not in name
        and "\\" not in name
        and name not in ("", ".", "..")
        and name.lower().endswith(REFERENCE_SUFFIXES)
    )
