"""Read a month's summaries (`content/YYYY-MM/*.md`) into `Summary` and `Issue` dataclasses.

Parsing is pure (`parse_summary`, `parse_issue_meta` take text; `content.front_matter` splits
the front matter); `load_issue` and `list_months` are the thin readers over the content folder.
Every error names the file and, where it can, the field or line.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter.content.article import Article
from newsletter.content.article import bare_doi
from newsletter.content.front_matter import split_front_matter
from newsletter.content.front_matter import text_field
from newsletter.content.intro import Intro
from newsletter.content.intro import read_intro
from newsletter.content.markup import raw_html_notes
from newsletter.content.model import MONTH_RE
from newsletter.content.model import Issue
from newsletter.content.model import Summary
from newsletter.content.model import looks_like_a_month
from newsletter.content.model import meant_month
from newsletter.content.model import month_label
from newsletter.content.model import parse_month
from newsletter.content.references import CSL_FIELDS
from newsletter.content.references import article_from_front_matter
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import Term
from newsletter.content.taxonomy import slugify
from newsletter.errors import ContentError
from newsletter.errors import raise_content_problems

IMPLICATIONS_RE = re.compile(r"^#{1,6}[ \t]+practice implications[ \t]*#*[ \t]*$", re.I | re.M)
SUMMARY_KEYS = {
    "title",
    "topics",
    "research_type",
    "citation",
    "article",
    "reference",
    "doi",
    "order",
    "slug",
    "corrected",
    "author",
}
AUTHOR_MAX = 200  # a byline, not a paragraph
ISSUE_KEYS = {"subject", "public", "preheader", "status"}
ISSUE_STATUSES = ("draft", "ready")
ISSUE_FILE = "issue.md"


def _topics(
    meta: dict[str, Any], taxonomy: Taxonomy, source: str, problems: list[ContentError]
) -> tuple[Term, ...]:
    """The known topics; one problem per unknown label."""
    raw = meta.get("topics")
    if raw is None or raw == [] or raw == "":
        problems.append(ContentError(source, "at least one topic is required", field="topics"))
        return ()
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        problems.append(
            ContentError(source, "must be a list of topic labels or slugs", field="topics")
        )
        return ()
    terms: list[Term] = []
    for name in names:
        term = taxonomy.topics.find(name)
        if term is None:
            message = taxonomy.topics.unknown_message(name)
            problems.append(ContentError(source, message, field="topics"))
        elif term not in terms:
            terms.append(term)
    return tuple(terms)


def normalize_doi(value: str, source: str) -> str:
    """Bare DOI from '10.x/y', 'doi:10.x/y' or a doi.org URL; ContentError if malformed."""
    doi = bare_doi(value)
    if doi is None:
        raise ContentError(source, f"{value!r} is not a DOI (expected 10.NNNN/...)", field="doi")
    return doi


def parse_summary(text: str, source: str, month: str, taxonomy: Taxonomy) -> Summary:
    """Parse one summary file's text. `source` names the file in errors (`ContentProblems`
    listing each when there are several)."""
    problems: list[ContentError] = []
    summary = read_summary(text, source, month, taxonomy, problems)
    raise_content_problems(source, problems)
    assert summary is not None
    return summary


def read_summary(
    text: str, source: str, month: str, taxonomy: Taxonomy, problems: list[ContentError]
) -> Summary | None:
    """`parse_summary` that adds every problem of the file to `problems` and returns None
    when there is one, instead of stopping at the first. Raw HTML is noted in `notes`."""
    try:
        meta, body, body_line = split_front_matter(text, source)
    except ContentError as error:
        problems.append(error)  # without its fields, nothing more can be checked
        return None
    found: list[ContentError] = []
    allowed = ", ".join(sorted(SUMMARY_KEYS))
    for key in sorted(set(meta) - SUMMARY_KEYS, key=str):
        hint = ""
        if str(key) in CSL_FIELDS or str(key).lower() in ("journal", "year", "pages", "authors"):
            hint = "; the article's own fields go under `article:`"
        message = f"unknown field{hint} (allowed: {allowed})"
        found.append(ContentError(source, message, field=str(key)))
    title = text_field(meta, "title", source, found, required=True)
    topics = _topics(meta, taxonomy, source, found)
    type_name = text_field(meta, "research_type", source, found, required=True)
    research_type = taxonomy.research_types.find(type_name) if type_name else None
    if type_name and research_type is None:
        message = taxonomy.research_types.unknown_message(type_name)
        found.append(ContentError(source, message, field="research_type"))
    order = meta.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
        found.append(ContentError(source, "must be a whole number", field="order"))
    doi = text_field(meta, "doi", source, found)
    if doi:
        try:
            doi = normalize_doi(doi, source)
        except ContentError as error:
            found.append(error)
    slug = _summary_slug(meta, source, found)
    corrected = meta.get("corrected")
    if corrected is not None and not isinstance(corrected, dt.date):
        found.append(ContentError(source, "must be a date (YYYY-MM-DD)", field="corrected"))
    citation = text_field(meta, "citation", source, found)
    author = text_field(meta, "author", source, found)  # one line; shown as a byline
    if len(author) > AUTHOR_MAX:
        found.append(ContentError(source, f"at most {AUTHOR_MAX} characters", field="author"))
    csl = article_from_front_matter(
        meta, source, found, lambda name: _read_reference(source, name, found)
    )
    article = Article(csl) if csl is not None else None
    if article is not None and article.doi:
        doi = article.doi  # the one DOI (a `doi:` that differs is an error)
    parts = IMPLICATIONS_RE.split(body, maxsplit=1)
    summary_md, implications_md = (
        (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else ("", "")
    )
    if len(parts) != 2:
        message = "missing the '## Practice Implications' heading"
        found.append(ContentError(source, message, field="Practice Implications"))
    elif not summary_md:
        message = "the summary text before the heading is empty"
        found.append(ContentError(source, message, field="body"))
    if len(parts) == 2 and not implications_md:
        found.append(ContentError(source, "the section is empty", field="Practice Implications"))
    problems += found
    if found or research_type is None:
        return None
    return Summary(
        month=month,
        slug=slug,
        title=title,
        topics=topics,
        research_type=research_type,
        citation=citation,
        doi=doi,
        order=order,
        summary_md=summary_md,
        implications_md=implications_md,
        source=source,
        notes=tuple(raw_html_notes(body, source, body_line)),
        article=article,
        corrected=corrected if isinstance(corrected, dt.date) else None,
        author=author,
    )


def _read_reference(source: str, name: str, problems: list[ContentError]) -> tuple[str, str] | None:
    """(path, text) of the `reference:` file beside the summary file `source`."""
    path = Path(source).parent / name
    if not path.is_file():
        problems.append(ContentError(source, f"{name}: no such file beside it", field="reference"))
        return None
    text = _read_text(path, problems)
    return None if text is None else (str(path), text)


def _summary_slug(meta: dict[str, Any], source: str, problems: list[ContentError]) -> str:
    slug = text_field(meta, "slug", source, problems) or _slug_from_filename(source)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", slug):
        message = f"{slug!r}: use lowercase letters, digits and '-'"
        problems.append(ContentError(source, message, field="slug"))
    return slug


def _slug_from_filename(source: str) -> str:
    stem = Path(source).stem.lower()
    return slugify(re.sub(r"^\d+[-_. ]*", "", stem) or stem)


def parse_issue_meta(text: str, source: str) -> tuple[dict[str, Any], Intro]:
    """Parse `issue.md`: returns (front matter, intro). The intro's parts tied to summaries
    (`{summary=slug}`, see `newsletter.content.intro`) are checked for their form here and
    for their slugs in `build_issue`."""
    problems: list[ContentError] = []
    meta, intro = read_issue_meta(text, source, problems)
    raise_content_problems(source, problems)
    return meta, intro


def read_issue_meta(
    text: str, source: str, problems: list[ContentError]
) -> tuple[dict[str, Any], Intro]:
    """`parse_issue_meta` that adds every problem to `problems` instead of stopping."""
    try:
        meta, body, first_line = split_front_matter(text, source)
    except ContentError as error:
        problems.append(error)
        return {}, Intro(path=source)
    allowed = ", ".join(sorted(ISSUE_KEYS))
    for key in sorted(set(meta) - ISSUE_KEYS):
        problems.append(ContentError(source, f"unknown field (allowed: {allowed})", field=key))
    if "public" in meta and not isinstance(meta["public"], bool):
        problems.append(ContentError(source, "must be true or false", field="public"))
    if "status" in meta and meta["status"] not in ISSUE_STATUSES:
        message = f"must be one of: {', '.join(ISSUE_STATUSES)}"
        problems.append(ContentError(source, message, field="status"))
    return meta, read_intro(body, source, first_line, problems)


def build_issue(
    month: str,
    summaries: list[Summary],
    newsletter_name: str,
    meta: dict[str, Any] | None = None,
    intro: Intro | None = None,
    source: str = "",
) -> Issue:
    """Order the summaries (by `order`, then file name), fill in the default subject and check
    that every part of the intro names one of the month's summaries."""
    problems: list[ContentError] = []
    issue = _assemble(month, summaries, newsletter_name, meta, intro, source, problems)
    raise_content_problems(source or month, problems)
    assert issue is not None
    return issue


def _assemble(
    month: str,
    summaries: list[Summary],
    newsletter_name: str,
    meta: dict[str, Any] | None,
    intro: Intro | None,
    source: str,
    problems: list[ContentError],
    unread: tuple[str, ...] = (),
) -> Issue | None:
    """`build_issue` adding its problems to `problems`. `unread` are the slugs of the month's
    files that could not be read: the intro may name them, and the month is not empty."""
    parse_month(month)
    before = len(problems)
    if not summaries and not unread:
        problems.append(ContentError(source or month, "no summaries (*.md files) in this month"))
    ordered = _in_order(summaries)
    seen: dict[str, str] = {}
    for summary in ordered:
        if summary.slug in seen:
            message = f"same slug {summary.slug!r} as {seen[summary.slug]}"
            problems.append(ContentError(summary.source, message, field="slug"))
        seen.setdefault(summary.slug, summary.source)
    meta = meta or {}
    issue_path = str(Path(source) / ISSUE_FILE) if source else ISSUE_FILE
    subject = text_field(meta, "subject", issue_path, problems)
    preheader = text_field(meta, "preheader", issue_path, problems)
    intro = intro or Intro()
    known = [summary.slug for summary in ordered] + [s for s in unread if s not in seen]
    check_intro_slugs(intro, known, intro.path or issue_path, problems)
    if len(problems) > before or not ordered:
        return None
    return Issue(
        month=month,
        subject=subject or default_subject(newsletter_name, month),
        summaries=tuple(ordered),
        intro=intro,
        preheader=preheader,
        public=bool(meta.get("public", False)),
        has_custom_subject=bool(subject),
    )


def default_subject(newsletter_name: str, month: str) -> str:
    """'<name> — November 2026': the subject when issue.md gives none."""
    return f"{newsletter_name} — {month_label(month)}"


def _in_order(summaries: list[Summary]) -> list[Summary]:
    """By `order` (summaries without one last), then by file name."""
    return sorted(summaries, key=lambda s: (s.order is None, s.order or 0, Path(s.source).name))


def check_intro_slugs(
    intro: Intro, known: list[str], path: str, problems: list[ContentError]
) -> None:
    """A problem naming the file, line and slug of each part for no summary of the month."""
    for part in intro.parts:
        if part.slug not in known:
            problems.append(
                ContentError(
                    path,
                    f"line {part.line}: {{summary={part.slug}}} names no summary of this month "
                    f"(the slugs are: {', '.join(known)})",
                )
            )


def _read_text(path: Path, problems: list[ContentError]) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        problems.append(ContentError(path, f"not UTF-8 text (byte {error.start})"))
    except OSError as error:
        problems.append(ContentError(path, f"cannot be read: {error.strerror or error}"))
    return None


@dataclass(frozen=True)
class MonthReading:
    """Everything one read of a month found: what `issues check` reports.

    `issue` is None when there are problems; `summaries` are then the files that read without
    any (in reading order), so their size can still be checked. `notes` are warnings.
    """

    month: str
    issue: Issue | None
    problems: tuple[ContentError, ...]
    notes: tuple[str, ...]
    summaries: tuple[Summary, ...]


def read_month(
    content_dir: Path, month: str, taxonomy: Taxonomy, newsletter_name: str
) -> MonthReading:
    """Read every file of `content_dir/month/`, collecting every problem of every file.

    `ContentError` only when there is nothing to read: a month not named YYYY-MM, no folder.
    """
    parse_month(month)
    folder = Path(content_dir) / month
    if not folder.is_dir():
        raise ContentError(folder, "no such month folder")
    problems: list[ContentError] = []
    summaries: list[Summary] = []
    unread: list[str] = []
    for path in sorted(folder.glob("*.md")):
        if path.name == ISSUE_FILE:
            continue
        text = _read_text(path, problems)
        summary = None if text is None else read_summary(text, str(path), month, taxonomy, problems)
        if summary is None:
            unread.append(probable_slug(text or "", str(path)))
        else:
            summaries.append(summary)
    meta: dict[str, Any] = {}
    intro = Intro()
    issue_file = folder / ISSUE_FILE
    if issue_file.exists():
        text = _read_text(issue_file, problems)
        if text is not None:
            meta, intro = read_issue_meta(text, str(issue_file), problems)
    issue = _assemble(
        month, summaries, newsletter_name, meta, intro, str(folder), problems, tuple(unread)
    )
    notes = [note for summary in _in_order(summaries) for note in summary.notes]
    return MonthReading(
        month=month,
        issue=None if problems else issue,
        problems=tuple(problems),
        notes=tuple(notes + list(intro.notes)),
        summaries=tuple(_in_order(summaries)),
    )


def probable_slug(text: str, source: str) -> str:
    """The slug a file that could not be read would have: its `slug:` field if that much of
    it reads, else the one from its name (so that the intro's parts for it are not refused)."""
    try:
        meta = split_front_matter(text, source)[0]
    except ContentError:
        meta = {}
    slug = meta.get("slug")
    return slug.strip() if isinstance(slug, str) and slug.strip() else _slug_from_filename(source)


def load_issue(content_dir: Path, month: str, taxonomy: Taxonomy, newsletter_name: str) -> Issue:
    """Read `content_dir/month/` into an Issue; `ContentError` for a problem, `ContentProblems`
    listing every problem of every file when there are several."""
    reading = read_month(content_dir, month, taxonomy, newsletter_name)
    raise_content_problems(Path(content_dir) / month, list(reading.problems))
    assert reading.issue is not None
    return reading.issue


def is_public(content_dir: Path, month: str) -> bool:
    """Whether the month's issue.md says `public: true`; only its front matter is read, so a
    draft with broken summaries is not in the way (`ContentError` if issue.md cannot be read)."""
    issue_file = Path(content_dir) / month / ISSUE_FILE
    if not issue_file.exists():
        return False
    problems: list[ContentError] = []
    text = _read_text(issue_file, problems)
    raise_content_problems(issue_file, problems)
    assert text is not None
    meta = split_front_matter(text, str(issue_file))[0]
    return meta.get("public") is True


def list_months(content_dir: Path) -> list[str]:
    """The YYYY-MM folders under `content_dir`, oldest first."""
    root = Path(content_dir)
    if not root.is_dir():
        raise ContentError(root, "content folder not found")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and MONTH_RE.match(p.name))


def misnamed_months(content_dir: Path) -> list[tuple[str, str | None]]:
    """The folders under `content_dir` that look like months but are not named YYYY-MM, so
    `list_months` ignores them: (folder name, the YYYY-MM it stands for, or None for no real
    month such as '2022-13'), sorted by name."""
    root = Path(content_dir)
    if not root.is_dir():
        return []
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and looks_like_a_month(p.name))
    return [(name, meant_month(name)) for name in names]


def latest_month(content_dir: Path) -> str:
    """The newest YYYY-MM folder."""
    months = list_months(content_dir)
    if not months:
        raise ContentError(content_dir, "no YYYY-MM month folders")
    return months[-1]
