"""Read a month's summaries (`content/YYYY-MM/*.md`) into `Summary` and `Issue` dataclasses.

Parsing is pure (`parse_summary`, `parse_issue_meta` take text); `load_issue` and
`list_months` are the thin readers over the content folder. Every error names the file and,
where it can, the field or line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from newsletter.content.intro import Intro
from newsletter.content.intro import parse_intro
from newsletter.content.model import MONTH_RE
from newsletter.content.model import Issue
from newsletter.content.model import Summary
from newsletter.content.model import month_label
from newsletter.content.model import parse_month
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import Term
from newsletter.content.taxonomy import slugify
from newsletter.errors import ContentError

DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
IMPLICATIONS_RE = re.compile(r"^#{1,6}[ \t]+practice implications[ \t]*#*[ \t]*$", re.I | re.M)
SUMMARY_KEYS = {"title", "topics", "research_type", "citation", "doi", "order", "slug"}
ISSUE_KEYS = {"subject", "public", "preheader"}
ISSUE_FILE = "issue.md"


# python-frontmatter's parser: it splits on '---' fences; the YAML is loaded here, so that errors
# keep their line numbers and a front matter that is not a mapping is reported, not dropped.
_FRONT_MATTER = frontmatter.YAMLHandler()


def _split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str, int]:
    """(front matter, body stripped, the file line the stripped body starts on)."""
    # CRLF to LF as python-frontmatter does; drop a byte-order mark, which would hide the fence.
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    fence = _FRONT_MATTER.FM_BOUNDARY.match(text)
    if fence is None:
        raise ContentError(source, "must start with YAML front matter between '---' lines")
    try:
        yaml_text, body = _FRONT_MATTER.split(text)
    except ValueError:
        raise ContentError(source, "the front matter has no closing '---' line") from None
    # The YAML text starts where the opening fence's match ends: the file line of its line 0.
    first_line = text.count("\n", 0, fence.end()) + 1
    try:
        meta = _FRONT_MATTER.load(yaml_text)
    except yaml.MarkedYAMLError as error:
        raise ContentError(source, _yaml_error_message(error, first_line)) from None
    except yaml.YAMLError as error:
        raise ContentError(source, f"invalid YAML front matter: {error}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ContentError(source, "front matter must be a mapping of keys to values")
    # The body is the text's tail: count the lines before its first non-blank character.
    start = len(text) - len(body.lstrip()) if text.endswith(body) else 0
    return meta, body.strip(), text.count("\n", 0, start) + 1


def _yaml_error_message(error: yaml.MarkedYAMLError, first_line: int) -> str:
    """'line N: invalid YAML front matter: <problem> (<context> that starts on line M)'."""
    mark = error.problem_mark or error.context_mark
    if mark is None:
        return f"invalid YAML front matter: {error}"
    message = f"line {first_line + mark.line}: invalid YAML front matter: "
    message += error.problem or error.context or "syntax error"
    context = error.context_mark
    if error.problem and error.context and context is not None and context.line != mark.line:
        message += f" ({error.context} that starts on line {first_line + context.line})"
    return message


def _text_field(meta: dict[str, Any], key: str, source: str, *, required: bool = False) -> str:
    value = meta.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ContentError(source, "is required", field=key)
        return ""
    if isinstance(value, list | dict):
        raise ContentError(source, "must be text, not a list or mapping", field=key)
    return " ".join(str(value).split())


def _topics(meta: dict[str, Any], taxonomy: Taxonomy, source: str) -> tuple[Term, ...]:
    raw = meta.get("topics")
    if raw is None or raw == [] or raw == "":
        raise ContentError(source, "at least one topic is required", field="topics")
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ContentError(source, "must be a list of topic labels or slugs", field="topics")
    terms: list[Term] = []
    for name in names:
        term = taxonomy.topics.find(name)
        if term is None:
            raise ContentError(source, taxonomy.topics.unknown_message(name), field="topics")
        if term not in terms:
            terms.append(term)
    return tuple(terms)


def normalize_doi(value: str, source: str) -> str:
    """Bare DOI from '10.x/y', 'doi:10.x/y' or a doi.org URL; ContentError if malformed."""
    doi = value.strip()
    doi = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", "", doi, flags=re.I)
    if not DOI_RE.match(doi):
        raise ContentError(source, f"{value!r} is not a DOI (expected 10.NNNN/...)", field="doi")
    return doi


def parse_summary(text: str, source: str, month: str, taxonomy: Taxonomy) -> Summary:
    """Parse one summary file's text. `source` names the file in errors."""
    meta, body, _line = _split_front_matter(text, source)
    unknown = sorted(set(meta) - SUMMARY_KEYS)
    if unknown:
        allowed = ", ".join(sorted(SUMMARY_KEYS))
        raise ContentError(source, f"unknown field (allowed: {allowed})", field=unknown[0])
    title = _text_field(meta, "title", source, required=True)
    topics = _topics(meta, taxonomy, source)
    type_name = _text_field(meta, "research_type", source, required=True)
    research_type = taxonomy.research_types.find(type_name)
    if research_type is None:
        message = taxonomy.research_types.unknown_message(type_name)
        raise ContentError(source, message, field="research_type")
    order = meta.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
        raise ContentError(source, "must be a whole number", field="order")
    doi_text = _text_field(meta, "doi", source)
    slug = _text_field(meta, "slug", source) or _slug_from_filename(source)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", slug):
        raise ContentError(source, f"{slug!r}: use lowercase letters, digits and '-'", field="slug")
    parts = IMPLICATIONS_RE.split(body, maxsplit=1)
    if len(parts) != 2:
        raise ContentError(
            source, "missing the '## Practice Implications' heading", field="Practice Implications"
        )
    summary_md, implications_md = parts[0].strip(), parts[1].strip()
    if not summary_md:
        raise ContentError(source, "the summary text before the heading is empty", field="body")
    if not implications_md:
        raise ContentError(source, "the section is empty", field="Practice Implications")
    return Summary(
        month=month,
        slug=slug,
        title=title,
        topics=topics,
        research_type=research_type,
        citation=_text_field(meta, "citation", source),
        doi=normalize_doi(doi_text, source) if doi_text else "",
        order=order,
        summary_md=summary_md,
        implications_md=implications_md,
        source=source,
    )


def _slug_from_filename(source: str) -> str:
    stem = Path(source).stem.lower()
    return slugify(re.sub(r"^\d+[-_. ]*", "", stem) or stem)


def parse_issue_meta(text: str, source: str) -> tuple[dict[str, Any], Intro]:
    """Parse `issue.md`: returns (front matter, intro). The intro's parts tied to summaries
    (`{summary=slug}`, see `newsletter.content.intro`) are checked for their form here and
    for their slugs in `build_issue`."""
    meta, body, first_line = _split_front_matter(text, source)
    unknown = sorted(set(meta) - ISSUE_KEYS)
    if unknown:
        allowed = ", ".join(sorted(ISSUE_KEYS))
        raise ContentError(source, f"unknown field (allowed: {allowed})", field=unknown[0])
    if "public" in meta and not isinstance(meta["public"], bool):
        raise ContentError(source, "must be true or false", field="public")
    return meta, parse_intro(body, source, first_line)


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
    parse_month(month)
    if not summaries:
        raise ContentError(source or month, "no summaries (*.md files) in this month")
    ordered = sorted(
        summaries,
        key=lambda s: (s.order is None, s.order or 0, Path(s.source).name),
    )
    seen: dict[str, str] = {}
    for summary in ordered:
        if summary.slug in seen:
            raise ContentError(
                summary.source, f"same slug {summary.slug!r} as {seen[summary.slug]}", field="slug"
            )
        seen[summary.slug] = summary.source
    meta = meta or {}
    issue_path = str(Path(source) / ISSUE_FILE) if source else ISSUE_FILE
    subject = _text_field(meta, "subject", issue_path)
    intro = intro or Intro()
    _check_intro_slugs(intro, ordered, intro.path or issue_path)
    return Issue(
        month=month,
        subject=subject or f"{newsletter_name} — {month_label(month)}",
        summaries=tuple(ordered),
        intro=intro,
        preheader=_text_field(meta, "preheader", issue_path),
        public=bool(meta.get("public", False)),
        has_custom_subject=bool(subject),
    )


def _check_intro_slugs(intro: Intro, summaries: list[Summary], path: str) -> None:
    """`ContentError` naming the file, line and slug of a part for no summary of the month."""
    known = [summary.slug for summary in summaries]
    for part in intro.parts:
        if part.slug not in known:
            raise ContentError(
                path,
                f"line {part.line}: {{summary={part.slug}}} names no summary of this month "
                f"(the slugs are: {', '.join(known)})",
            )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ContentError(path, f"not UTF-8 text (byte {error.start})") from None


def load_issue(content_dir: Path, month: str, taxonomy: Taxonomy, newsletter_name: str) -> Issue:
    """Read `content_dir/month/` into an Issue."""
    parse_month(month)
    folder = Path(content_dir) / month
    if not folder.is_dir():
        raise ContentError(folder, "no such month folder")
    summaries = [
        parse_summary(_read_text(path), str(path), month, taxonomy)
        for path in sorted(folder.glob("*.md"))
        if path.name != ISSUE_FILE
    ]
    meta: dict[str, Any] = {}
    intro = Intro()
    issue_file = folder / ISSUE_FILE
    if issue_file.exists():
        meta, intro = parse_issue_meta(_read_text(issue_file), str(issue_file))
    return build_issue(month, summaries, newsletter_name, meta, intro, str(folder))


def list_months(content_dir: Path) -> list[str]:
    """The YYYY-MM folders under `content_dir`, oldest first."""
    root = Path(content_dir)
    if not root.is_dir():
        raise ContentError(root, "content folder not found")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and MONTH_RE.match(p.name))


def latest_month(content_dir: Path) -> str:
    """The newest YYYY-MM folder."""
    months = list_months(content_dir)
    if not months:
        raise ContentError(content_dir, "no YYYY-MM month folders")
    return months[-1]
