"""A new summary file for an article: its front matter with the article filled in from a
reference (or a bare DOI) and empty summary and Practice Implications sections (pure).

What the reference does not give (a DOI alone gives nothing but itself) is written as an empty
placeholder, so that `newsletter issues check` lists what is left to fill in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from newsletter.content.article import bare_doi
from newsletter.content.references import read_csl
from newsletter.content.taxonomy import slugify
from newsletter.errors import ContentError
from newsletter.errors import raise_content_problems

# The fields `issues check` requires, as placeholders when the reference lacks them; a
# journal article's place in its journal too.
REQUIRED = ("title", "author", "issued")
JOURNAL_PLACE = ("container-title", "volume", "issue", "page")
_ORDER = ("type", "title", "author", "editor", "issued", *JOURNAL_PLACE, "DOI", "URL", "PMID")
SLUG_LENGTH = 60


def csl_for_doi(value: str) -> dict[str, Any]:
    """The article of a bare DOI ('10.x/y', 'doi:…', a doi.org URL): that DOI only (there is
    no network to look it up); `ContentError` when it is not a DOI."""
    doi = bare_doi(value)
    if doi is None:
        raise ContentError("--doi", f"{value!r} is not a DOI (expected 10.NNNN/...)")
    return {"type": "article-journal", "DOI": doi}


def draft_article(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The CSL item to write: what of `raw` is right, with placeholders for what is missing.
    `ContentError` (`ContentProblems`) for a field that is given but wrong (a bad DOI)."""
    problems: list[ContentError] = []
    csl = read_csl(raw, source, problems, "")
    missing = {field for field in REQUIRED if field not in csl}
    raise_content_problems(source, [p for p in problems if p.field not in missing])
    draft: dict[str, Any] = {"type": csl.get("type", "article-journal")}
    placeholders = REQUIRED + (JOURNAL_PLACE if draft["type"] == "article-journal" else ())
    for field in _ORDER:
        if field in csl:
            draft[field] = csl[field]
        elif field in placeholders:
            draft[field] = _placeholder(field)
    draft.update({key: value for key, value in csl.items() if key not in draft})
    if isinstance(draft.get("issued"), dict):
        draft["issued"] = _issued_shorthand(draft["issued"])
    return draft


def _placeholder(field: str) -> Any:
    if field == "author":
        return [{"family": "", "given": ""}]
    return None if field == "issued" else ""


def _issued_shorthand(issued: Mapping[str, Any]) -> int | str:
    """2018 or '2018-04' / '2018-04-05': what an editor writes (the reader reads it back)."""
    parts = issued["date-parts"][0]
    if len(parts) == 1:
        return int(parts[0])
    return "-".join([str(parts[0])] + [f"{int(p):02d}" for p in parts[1:]])


def draft_slug(article: Mapping[str, Any]) -> str:
    """The file's slug: the article title's words up to ~60 characters, else 'doi-…'."""
    words = slugify(str(article.get("title") or "")).split("-")
    slug = ""
    for word in words:
        if slug and len(slug) + 1 + len(word) > SLUG_LENGTH:
            break
        slug = f"{slug}-{word}" if slug else word
    if not slug and article.get("DOI"):
        slug = "doi-" + slugify(str(article["DOI"]))
    return slug or "summary"


def summary_draft(article: Mapping[str, Any]) -> str:
    """The text of a new summary file for `article` (from `draft_article`)."""
    block = yaml.safe_dump(
        {"article": dict(article)},
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,
        width=100,
    )
    return (
        "---\n"
        'title: ""  # the summary\'s headline (the article is below)\n'
        "topics: []  # labels or slugs from the taxonomy\n"
        'research_type: ""  # e.g. Meta-analysis, Randomized controlled trial\n'
        f"{block}"
        "---\n"
        "\n"
        "\n"
        "## Practice Implications\n"
        "\n"
    )


def next_file_name(existing: list[str], slug: str) -> str:
    """'NN-slug.md', NN one more than the highest number the month's files start with, so
    that the new summary comes last in file-name order."""
    numbers = [int(m.group(1)) for name in existing if (m := re.match(r"^(\d+)[-_. ]", name))]
    return f"{max(numbers, default=0) + 1:02d}-{slug}.md"
