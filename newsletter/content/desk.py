"""The editor's file operations on `content/YYYY-MM/`: read with a version, check, save
atomically, delete, reorder (no database: the web admin and the API call these).

Every save names the version (`writer.version_of`) of the file it replaces, '' for a new one;
when the file on disk is no longer that version the save is refused with `ChangedElsewhere`,
carrying what is on disk now, so nothing written elsewhere (a text editor, git, another admin)
is silently overwritten. Checks are the reader's own (what `issues check` reports per file),
plus: a slug names one file of the month and nothing outside it, one-line fields are one line.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import Any
from typing import ParamSpec
from typing import TypeVar

from newsletter.content.article import bare_doi
from newsletter.content.drafts import draft_article
from newsletter.content.drafts import next_file_name
from newsletter.content.front_matter import split_front_matter
from newsletter.content.model import parse_month
from newsletter.content.reader import ISSUE_FILE
from newsletter.content.reader import check_intro_slugs
from newsletter.content.reader import probable_slug
from newsletter.content.reader import read_issue_meta
from newsletter.content.reader import read_summary
from newsletter.content.reference_formats import parse_reference
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.writer import IssueDraft
from newsletter.content.writer import SummaryDraft
from newsletter.content.writer import issue_draft
from newsletter.content.writer import issue_text
from newsletter.content.writer import one_line_problem
from newsletter.content.writer import summary_draft
from newsletter.content.writer import summary_text
from newsletter.content.writer import version_of
from newsletter.errors import ChangedElsewhere as ChangedElsewhere
from newsletter.errors import ContentError
from newsletter.errors import InvalidEdit
from newsletter.paths import output_file

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")
P = ParamSpec("P")
R = TypeVar("R")
# A save checks the version, then writes: one at a time in this process, so that two requests
# naming the same version cannot both pass the check (another process or a text editor can
# still slip in between; the window is the few microseconds of one write).
_WRITING = threading.RLock()


def _one_at_a_time(function: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(function)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with _WRITING:
            return function(*args, **kwargs)

    return locked


# The reader's names for the body's parts, as the editor's fields are called.
_FIELD_NAMES = {"body": "summary", "Practice Implications": "implications"}


@dataclass(frozen=True)
class OnDisk:
    """A file as read: its path, its text (None when there is no such file) and version."""

    path: Path
    text: str | None

    @property
    def version(self) -> str:
        return version_of(self.text)


def month_folder(content_dir: Path, month: str) -> Path:
    """`content_dir/month` for a YYYY-MM month (`ContentError` otherwise)."""
    parse_month(month)
    return Path(content_dir) / month


def create_month(content_dir: Path, month: str) -> Path:
    """Make the month's folder; `ContentError` if it is no month or exists already."""
    folder = month_folder(content_dir, month)
    if folder.exists():
        raise ContentError(folder, "this month exists already", field="month")
    try:
        folder.mkdir(parents=False)
    except OSError as error:
        raise ContentError(folder, f"cannot create: {error.strerror or error}") from None
    return folder


def check_slug_problems(slug: str) -> dict[str, list[str]]:
    """{} when the slug can name a file of the month, else its problem."""
    if SLUG_RE.fullmatch(slug):
        return {}
    return {"slug": ["use 1 to 80 lowercase letters, digits and '-' (no other characters)"]}


def check_slug(slug: str) -> str:
    """The slug, if it can name a file of the month; `InvalidEdit` (field slug) otherwise."""
    problems = check_slug_problems(slug)
    if problems:
        raise InvalidEdit(problems)
    return slug


def read(path: Path) -> OnDisk:
    """The file's text (None when it does not exist)."""
    try:
        return OnDisk(path, path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return OnDisk(path, None)
    except (OSError, UnicodeDecodeError) as error:
        raise ContentError(path, f"cannot read: {error}") from None


def summary_files(content_dir: Path, month: str) -> dict[str, Path]:
    """slug -> file of each summary of the month (a `slug:` field, else the file's name)."""
    folder = month_folder(content_dir, month)
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else ():
        if path.name == ISSUE_FILE or not path.is_file():
            continue
        found.setdefault(_slug_of(path), path)
    return found


def _slug_of(path: Path) -> str:
    text = read(path).text or ""
    return probable_slug(text, str(path))


def read_summary_file(content_dir: Path, month: str, slug: str) -> OnDisk:
    """The month's file for `slug` (text None when there is none yet: where it would go)."""
    check_slug(slug)
    files = summary_files(content_dir, month)
    if slug in files:
        return read(files[slug])
    name = next_file_name([p.name for p in files.values()], slug)
    return OnDisk(month_folder(content_dir, month) / name, None)


def load_draft(on_disk: OnDisk) -> SummaryDraft | None:
    """The editable fields of a summary file as read (None for no file or unreadable YAML)."""
    if on_disk.text is None:
        return None
    try:
        return summary_draft(on_disk.text, str(on_disk.path))[0]
    except ContentError:
        return None


def summary_problems(
    draft: SummaryDraft, text: str, source: str, month: str, taxonomy: Taxonomy
) -> dict[str, list[str]]:
    """Field -> messages for a summary about to be written ({} when it passes)."""
    found: dict[str, list[str]] = {}
    for name in ("title", "research_type", "citation", "doi", "author"):
        problem = one_line_problem(getattr(draft, name))
        if problem:
            found.setdefault(name, []).append(problem)
    problems: list[ContentError] = []
    read_summary(text, source, month, taxonomy, problems)
    for error in problems:
        name = _FIELD_NAMES.get(error.field or "", error.field or "file")
        detail = error.detail
        if name.startswith("article."):  # the article's own fields, under the one field
            name, detail = "article", f"{name}: {detail}"
        found.setdefault(name, []).append(detail)
    return found


@_one_at_a_time
def save_summary(
    content_dir: Path,
    month: str,
    slug: str,
    draft: SummaryDraft,
    version: str,
    taxonomy: Taxonomy,
    reference: str = "",
) -> tuple[OnDisk, bool]:
    """Write the summary `slug` of `month`: (the file as written, whether it was created).

    `version` is the one read ('' for a new file): `ChangedElsewhere` if the file is not
    that version now; `InvalidEdit` if the result would not pass the checks (nothing written).
    Saving what is already there leaves the file untouched, byte for byte. `reference` is a
    pasted BibTeX, RIS or CSL-JSON entry: it becomes the file's `article:` (any `reference:`
    or free-text citation goes).
    """
    article = pasted_article(reference) if reference.strip() else None
    folder = month_folder(content_dir, month)
    if not folder.is_dir():
        raise ContentError(folder, "no such month folder")
    if not SLUG_RE.fullmatch(slug):  # every problem at once: the slug's and the fields'
        draft = replace(draft, topics=_labels(draft.topics, taxonomy))
        source = str(folder / "new.md")
        found = summary_problems(draft, summary_text(draft), source, month, taxonomy)
        found.pop("slug", None)
        raise InvalidEdit({**check_slug_problems(slug), **found})
    on_disk = read_summary_file(content_dir, month, slug)
    if on_disk.version != version:
        raise ChangedElsewhere(on_disk.path, on_disk.text, on_disk.version)
    base: dict[str, Any] | None = None
    if on_disk.text is not None:
        old, base = summary_draft(on_disk.text, str(on_disk.path))
        if article is None and _same(old, draft, taxonomy):
            return on_disk, False
    if article is not None:
        base = {k: v for k, v in (base or {}).items() if k not in ("reference", "citation")}
        base["article"] = article
        draft = replace(draft, citation="")
    # Topics by label and a bare DOI, as hand-written files have them.
    doi = bare_doi(draft.doi) or draft.doi
    draft = replace(draft, topics=_labels(draft.topics, taxonomy), doi=doi)
    text = summary_text(draft, base)
    problems = summary_problems(draft, text, str(on_disk.path), month, taxonomy)
    if problems:
        raise InvalidEdit(problems)
    _write(on_disk.path, text)
    return OnDisk(on_disk.path, text), on_disk.text is None


def pasted_article(text: str) -> dict[str, Any]:
    """The CSL item of one pasted BibTeX (`@article{…}`), RIS (`TY  - JOUR`) or CSL-JSON entry,
    with empty placeholders for what it lacks (as `newsletter summaries new --from` writes);
    `InvalidEdit` (field reference) when it does not read."""
    stripped = text.strip()
    suffix = ".bib" if stripped.startswith("@") else ".json" if stripped[:1] in "[{" else ".ris"
    try:
        return draft_article(parse_reference(stripped, suffix, "reference"), "reference")
    except ContentError as error:
        raise InvalidEdit(
            {"reference": [f"{error.detail} (read as {suffix[1:].upper()})"]}
        ) from None


def _labels(names: tuple[str, ...], taxonomy: Taxonomy) -> tuple[str, ...]:
    """Topics as the files write them, by label (an unknown name is kept, to be reported)."""
    labels = []
    for name in names:
        term = taxonomy.topics.find(name)
        label = term.label if term else name
        if label not in labels:
            labels.append(label)
    return tuple(labels)


def _same(old: SummaryDraft, new: SummaryDraft, taxonomy: Taxonomy) -> bool:
    old = replace(old, topics=_labels(old.topics, taxonomy))
    new = replace(new, topics=_labels(new.topics, taxonomy))
    return old == replace(
        new,
        author=" ".join(new.author.split()),
        summary_md=new.summary_md.replace("\r\n", "\n").strip(),
        implications_md=new.implications_md.replace("\r\n", "\n").strip(),
    )


@_one_at_a_time
def delete_summary(content_dir: Path, month: str, slug: str, version: str) -> Path:
    """Remove the summary file `slug` if it is still `version` (`ChangedElsewhere` if not)."""
    on_disk = read_summary_file(content_dir, month, slug)
    if on_disk.text is None:
        raise ContentError(month_folder(content_dir, month), f"no summary {slug!r}", field="slug")
    if on_disk.version != version:
        raise ChangedElsewhere(on_disk.path, on_disk.text, on_disk.version)
    on_disk.path.unlink()
    return on_disk.path


@_one_at_a_time
def reorder(content_dir: Path, month: str, slugs: list[str], taxonomy: Taxonomy) -> None:
    """Give the summaries `order: 1..n` in the order of `slugs` (files whose order is already
    right are not touched). Each file is written atomically."""
    files = summary_files(content_dir, month)
    for number, slug in enumerate(slugs, start=1):
        on_disk = read(files[slug])
        draft = load_draft(on_disk)
        if draft is None or draft.order == number:
            continue
        assert on_disk.text is not None
        base = summary_draft(on_disk.text, str(on_disk.path))[1]
        _write(on_disk.path, summary_text(replace(draft, order=number), base))


# --- issue.md ------------------------------------------------------------------------------


def read_issue_file(content_dir: Path, month: str) -> tuple[OnDisk, IssueDraft]:
    """issue.md as read and its fields (defaults when there is none)."""
    on_disk = read(month_folder(content_dir, month) / ISSUE_FILE)
    if on_disk.text is None:
        return on_disk, IssueDraft()
    try:
        return on_disk, issue_draft(on_disk.text, str(on_disk.path))
    except ContentError:
        return on_disk, IssueDraft()


@_one_at_a_time
def save_issue(content_dir: Path, month: str, draft: IssueDraft, version: str) -> OnDisk:
    """Write issue.md from `draft` if it is still `version`; `InvalidEdit` for a subject or
    preheader of more than one line, or an intro the reader refuses."""
    folder = month_folder(content_dir, month)
    if not folder.is_dir():
        raise ContentError(folder, "no such month folder")
    on_disk, old = read_issue_file(content_dir, month)
    if on_disk.version != version:
        raise ChangedElsewhere(on_disk.path, on_disk.text, on_disk.version)
    extra = {}
    if on_disk.text is not None:
        try:
            extra = split_front_matter(on_disk.text, str(on_disk.path))[0]
        except ContentError:
            extra = {}
    draft = replace(draft, extra=extra)
    if on_disk.text is not None and _same_issue(old, draft):
        return on_disk
    found: dict[str, list[str]] = {}
    for name in ("subject", "preheader"):
        problem = one_line_problem(getattr(draft, name))
        if problem:
            found.setdefault(name, []).append(problem)
    text = issue_text(draft)
    problems: list[ContentError] = []
    intro = read_issue_meta(text, str(on_disk.path), problems)[1]
    known = list(summary_files(content_dir, month))
    check_intro_slugs(intro, known, str(on_disk.path), problems)
    for error in problems:
        found.setdefault(error.field or "intro", []).append(error.detail)
    if found:
        raise InvalidEdit(found)
    _write(on_disk.path, text)
    return OnDisk(on_disk.path, text)


def _same_issue(old: IssueDraft, new: IssueDraft) -> bool:
    return old == replace(new, intro_md=new.intro_md.replace("\r\n", "\n").strip())


def _write(path: Path, text: str) -> None:
    with output_file(path) as stream:
        stream.write(text)
    path.chmod(0o644)  # content files are read by the archive build and by git, not secret


def article_title(on_disk: OnDisk) -> str:
    """What the file's `article:` or `reference:` names ('' when it has neither)."""
    if on_disk.text is None:
        return ""
    try:
        meta = split_front_matter(on_disk.text, str(on_disk.path))[0]
    except ContentError:
        return ""
    article = meta.get("article")
    if isinstance(article, dict):
        return str(article.get("title") or "an article without a title")
    reference = meta.get("reference")
    return f"the reference file {reference}" if isinstance(reference, str) else ""
